"""A Celery worker process killed with SIGKILL in the middle of a task (the pool process running
it, as the kernel's OOM killer or a crashed extension would): the training is re-run (acked
late, requeued) while the previous model keeps serving, and the store can train again; a
webhook delivery is retried, not lost."""

from __future__ import annotations

import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.test import override_settings
from django_tenants.utils import tenant_context

from apps.notifications.models import WebhookDelivery
from apps.notifications.services import webhook_endpoint_create
from apps.recommendations.models import ModelVersion
from tests.faults.conftest import server_env, test_database_url
from tests.faults.traffic import Client
from tests.processes import PrivateRedis, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

TRAIN = "/api/v1/recommendations/models/train"
QUEUES = ["default", "training"]


def _platform(procs, **extra):
    redis = PrivateRedis(procs)
    redis.start()
    env = server_env(database_url=test_database_url(), redis_url=redis.url, **extra)
    web = procs.web("granian", env=env)
    worker = procs.worker(env=env, queues=QUEUES, concurrency=1)
    return web, worker


def _pool_process(worker) -> int:
    (child,) = wait_until(worker.children, timeout=30, message="the worker's pool process")
    return child


def _version(store, number: int) -> ModelVersion:
    with tenant_context(store.tenant):
        return ModelVersion.objects.get(number=number)


def _training_lock_held() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 7301 "
            "AND granted AND database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database())"
        )
        return cursor.fetchone()[0] > 0


def test_worker_killed_mid_training_reruns_it_while_the_previous_model_serves(procs, fault_stores):
    store = fault_stores[0]
    web, worker = _platform(procs, RECS_TRAINING_SEARCH_TRIALS="4")
    client = Client(web.port, store.headers)
    serving = "/api/v1/recommendations/users/s5?k=5"
    before = client.request("GET", serving).json()["model_version"]

    started = client.request("POST", TRAIN, b"{}")
    assert started.status == 202, started.describe()
    number = started.json()["number"]
    wait_until(_training_lock_held, timeout=60, message="the training to start")
    victim = _pool_process(worker)
    lost_before = worker.log().count("WorkerLostError")
    os.kill(victim, signal.SIGKILL)

    during = client.request("GET", serving)
    assert (during.status, during.json()["model_version"]) == (200, before)
    rerun = wait_until(
        lambda: (
            _version(store, number).status != ModelVersion.Status.TRAINING
            and _version(store, number)
        ),
        timeout=120,
        message=f"v{number} to leave `training`",
    )
    assert worker.log().count("WorkerLostError") > lost_before
    assert rerun.status in (ModelVersion.Status.ACTIVE, ModelVersion.Status.READY), rerun.error
    after = client.request("GET", serving)
    assert after.status == 200
    assert after.json()["model_version"] in (before, f"v{number}")

    again = client.request("POST", TRAIN, b"{}")
    assert again.status == 202, again.describe()
    final = wait_until(
        lambda: (
            _version(store, number + 1).status != ModelVersion.Status.TRAINING
            and _version(store, number + 1)
        ),
        timeout=120,
        message=f"v{number + 1} to finish",
    )
    assert final.status in (ModelVersion.Status.ACTIVE, ModelVersion.Status.READY), final.error


class _Receiver(BaseHTTPRequestHandler):
    """Holds the first delivery open (until released) so the worker can be killed in it."""

    calls: list[dict]
    first_arrived: threading.Event
    release: threading.Event

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.calls.append(
            {"delivery": self.headers.get("ShelfSense-Delivery"), "body": json.loads(body)}
        )
        if len(self.calls) == 1:
            self.first_arrived.set()
            self.release.wait(30)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    handler = type(
        "Receiver",
        (_Receiver,),
        {"calls": [], "first_arrived": threading.Event(), "release": threading.Event()},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/hook"
    handler.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def webhook_store(fault_stores, receiver, django_db_blocker):
    """flt-2 with a committed endpoint on the receiver for training notifications."""
    store = fault_stores[1]
    with django_db_blocker.unblock(), override_settings(WEBHOOK_ALLOW_PRIVATE_HOSTS=True):
        from tests.transactions import committed

        def create():
            with tenant_context(store.tenant):
                return webhook_endpoint_create(
                    url=receiver[1], kinds=["training.finished", "training.failed"]
                )[0]

        endpoint = committed(create)
    yield store
    with django_db_blocker.unblock():

        def delete():
            with tenant_context(store.tenant):
                endpoint.delete()

        committed(delete)


def test_worker_killed_mid_webhook_delivery_retries_it(procs, receiver, webhook_store):
    handler, _ = receiver
    web, worker = _platform(
        procs, WEBHOOK_ALLOW_PRIVATE_HOSTS="true", RECS_TRAINING_SEARCH_TRIALS="1"
    )
    started = Client(web.port, webhook_store.headers).request("POST", TRAIN, b"{}")
    assert started.status == 202, started.describe()

    assert handler.first_arrived.wait(120), "no webhook delivery arrived"
    delivery_id = handler.calls[0]["delivery"]
    os.kill(_pool_process(worker), signal.SIGKILL)
    handler.release.set()

    def delivered():
        with tenant_context(webhook_store.tenant):
            return WebhookDelivery.objects.filter(
                pk=int(delivery_id), status=WebhookDelivery.Status.SUCCEEDED
            ).first()

    delivery = wait_until(delivered, timeout=90, message=f"delivery {delivery_id} to succeed")
    assert [call["delivery"] for call in handler.calls] == [delivery_id, delivery_id]
    assert handler.calls[1]["body"] == handler.calls[0]["body"]
    assert delivery.attempts == 1  # the killed attempt never finished, the retry did
