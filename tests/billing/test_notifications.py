"""Billing tells a store's owners through the notifications app: in-app rows, one email per
owner as their preferences say (never a second billing-only email), the store's webhooks
subscribed to the kind; nothing at all when the billing change rolls back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.core import mail
from django.db import transaction
from django_tenants.utils import tenant_context

from apps.billing.quotas import usage_record
from apps.billing.store_notices import billing_notify
from apps.notifications.kinds import Channel
from apps.notifications.models import Notification, WebhookDelivery
from apps.notifications.services import notification_preferences_set, webhook_endpoint_create
from tests.factories import MembershipFactory, UserFactory
from tests.notifications.test_webhooks import Receiver

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 9, 14, 9, 0, tzinfo=UTC)


@pytest.fixture
def receiver():
    server = Receiver([])
    yield server
    server.close()


def _rows(tenant) -> list[tuple]:
    with tenant_context(tenant):
        return list(
            Notification.objects.order_by("id").values_list(
                "user_id", "kind", "severity", "title", "body", "link"
            )
        )


def test_quota_warning_reaches_owners_in_app_by_email_once_and_by_webhook(
    alpha, beta, subscribe, settings, eager_celery, receiver, django_capture_on_commit_callbacks
):
    # given alpha on Starter (webhooks included) with two owners (one turned quota emails
    # off), an admin, and a webhook for quota warnings
    subscribe(alpha, "starter")
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    boss = MembershipFactory(tenant=alpha, user=UserFactory(email="boss@alpha.test")).user
    quiet = MembershipFactory(tenant=alpha, user=UserFactory(email="quiet@alpha.test")).user
    MembershipFactory(tenant=alpha, user=UserFactory(email="admin@alpha.test"), role="admin")
    with tenant_context(alpha):
        notification_preferences_set(user=quiet, choices={("quota.warning", Channel.EMAIL): False})
        webhook_endpoint_create(url=receiver.url, kinds=["quota.warning"])

    # when alpha's usage crosses 80% of the Starter plan's 5,000,000 events
    with django_capture_on_commit_callbacks(execute=True):
        usage_record(tenant=alpha, metric="events_ingested", amount=4_000_000, now=NOW)

    # then both owners (not the admin) have the in-app warning ...
    title = "80% of the monthly events ingested quota used"
    body = (
        "This month's events ingested reached 80% of the plan's quota (4000000/5000000). "
        "Upgrade on the billing page to raise it."
    )
    assert _rows(alpha) == [
        (boss.pk, "quota.warning", "warning", title, body, "/billing/"),
        (quiet.pk, "quota.warning", "warning", title, body, "/billing/"),
    ]
    # ... one email went out, to the owner who kept quota emails on, through the one path
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["boss@alpha.test"], f"[Alpha Store] {title}")
    ]
    assert "http://alpha.localhost/billing/" in mail.outbox[0].body
    # ... and the webhook received the signed event
    with tenant_context(alpha):
        delivery = WebhookDelivery.objects.get()
    assert (delivery.kind, delivery.status) == ("quota.warning", "succeeded")
    [(_, headers, raw)] = receiver.requests
    sent = json.loads(raw)
    assert headers["ShelfSense-Event"] == "quota.warning"
    assert (sent["kind"], sent["store"], sent["title"], sent["link"]) == (
        "quota.warning",
        "alpha",
        title,
        "http://alpha.localhost/billing/",
    )
    assert _rows(beta) == []


def test_a_rolled_back_billing_change_notifies_nobody(
    alpha, eager_celery, django_capture_on_commit_callbacks
):
    # given an owner
    MembershipFactory(tenant=alpha, user=UserFactory(email="boss@alpha.test"))

    # when the transaction that notified rolls back
    def notify_then_fail() -> None:
        with transaction.atomic():
            billing_notify(tenant=alpha, kind="billing.event", subject="a payment failed", body="x")
            raise RuntimeError("the billing change failed")

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        notify_then_fail()

    # then no row, no email, nothing scheduled
    assert _rows(alpha) == []
    assert mail.outbox == []
    assert callbacks == []


def test_a_store_without_owners_gets_no_member_notification(
    alpha, django_capture_on_commit_callbacks
):
    # given only an admin
    MembershipFactory(tenant=alpha, user=UserFactory(email="admin@alpha.test"), role="admin")

    # when billing notifies
    with django_capture_on_commit_callbacks() as callbacks:
        billing_notify(tenant=alpha, kind="billing.event", subject="a payment failed", body="x")

    # then nobody is notified (admins don't see billing) and nothing is scheduled
    assert _rows(alpha) == []
    assert callbacks == []
