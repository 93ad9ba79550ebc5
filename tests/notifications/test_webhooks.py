"""Store webhooks through a real Celery worker to a real local HTTP server: signed with the
README's scheme (checked by the README's own snippet), retried with backoff, logged, re-sent."""

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django_tenants.utils import tenant_context

from apps.notifications.models import Notification, WebhookDelivery
from apps.notifications.services import (
    notification_send,
    webhook_delivery_resend,
    webhook_endpoint_create,
)
from tests.transactions import committed


def _readme_verifier():
    """The verification snippet exactly as documented in the README."""
    readme = (Path(django_settings.BASE_DIR) / "README.md").read_text()
    match = re.search(
        r"<!-- webhook-verify-snippet -->\s*```python\n(.*?)```\s*<!-- /webhook-verify-snippet -->",
        readme,
        re.S,
    )
    namespace: dict = {}
    exec(match.group(1), namespace)  # noqa: S102 (our own README's code)
    return namespace["verify_shelfsense_signature"]


class Receiver:
    """127.0.0.1 HTTP server answering the given status codes in turn (then 200)."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((time.monotonic(), self.headers, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("growth_stores")]


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture
def webhook_settings(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    settings.WEBHOOK_BACKOFF_SECONDS = 0.5
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    return settings


def _delivery(tenant, pk):
    with tenant_context(tenant):
        return WebhookDelivery.objects.prefetch_related("log").get(pk=pk)


def test_failing_endpoint_is_retried_with_backoff_and_signed(
    committed_store, notifications_worker, webhook_settings
):
    tenant, owner = committed_store
    receiver = Receiver([500])
    verify = _readme_verifier()

    def given():
        with tenant_context(tenant):
            endpoint, secret = webhook_endpoint_create(
                url=receiver.url, kinds=["training.finished"], acting_user=owner
            )
            notification_send(
                kind="training.finished",
                title="Model v3 trained",
                body="NDCG@10 0.31",
                link="/models/",
            )
            delivery_id = WebhookDelivery.objects.get(endpoint=endpoint).pk
            in_app = list(Notification.objects.values_list("user_id", "title"))
            return secret, delivery_id, in_app

    try:
        secret, delivery_id, in_app = committed(given)
        delivery = _wait_for(
            lambda: (d := _delivery(tenant, delivery_id)).status == "succeeded" and d
        )
        log = [(a.number, a.status_code, a.manual) for a in delivery.log.all()]
    finally:
        receiver.close()
        connection.set_schema_to_public()

    assert in_app == [(owner.pk, "Model v3 trained")]
    assert log == [(1, 500, False), (2, 200, False)]
    assert delivery.attempts == 2
    assert delivery.last_status_code == 200
    (first_at, first_headers, first_body), (second_at, second_headers, second_body) = (
        receiver.requests
    )
    # The first retry waits WEBHOOK_BACKOFF_SECONDS.
    assert second_at - first_at >= 0.5
    assert first_body == second_body == delivery.body.encode()
    assert first_headers["ShelfSense-Event"] == "training.finished"
    assert second_headers["ShelfSense-Delivery"] == str(delivery_id)
    assert verify(secret, second_body, second_headers["ShelfSense-Signature"]) is True
    assert verify(secret, first_body, first_headers["ShelfSense-Signature"]) is True
    assert verify(secret, second_body + b" ", second_headers["ShelfSense-Signature"]) is False
    assert verify("whsec_wrong", second_body, second_headers["ShelfSense-Signature"]) is False
    old = re.sub(r"t=\d+", "t=1000", second_headers["ShelfSense-Signature"])
    assert verify(secret, second_body, old) is False


def test_delivery_fails_after_max_attempts_then_resends_by_hand(
    committed_store, notifications_worker, webhook_settings
):
    tenant, owner = committed_store
    receiver = Receiver([500, 503, 502])

    def given():
        with tenant_context(tenant):
            endpoint, _ = webhook_endpoint_create(
                url=receiver.url, kinds=["usage.anomaly"], acting_user=owner
            )
            notification_send(kind="usage.anomaly", title="API traffic spike")
            return WebhookDelivery.objects.get(endpoint=endpoint).pk

    def resend(delivery):
        with tenant_context(tenant):
            webhook_delivery_resend(delivery=delivery, acting_user=owner)

    try:
        delivery_id = committed(given)
        failed = _wait_for(lambda: (d := _delivery(tenant, delivery_id)).status == "failed" and d)
        failed_log = [(a.number, a.status_code) for a in failed.log.all()]
        committed(lambda: resend(failed))
        resent = _wait_for(
            lambda: (d := _delivery(tenant, delivery_id)).status == "succeeded" and d
        )
        resent_log = [(a.number, a.status_code, a.manual) for a in resent.log.all()]
    finally:
        receiver.close()
        connection.set_schema_to_public()

    assert failed_log == [(1, 500), (2, 503), (3, 502)]
    assert resent_log == [(1, 500, False), (2, 503, False), (3, 502, False), (4, 200, True)]
    assert len(receiver.requests) == 4
