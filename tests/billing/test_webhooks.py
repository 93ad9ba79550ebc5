"""Stripe webhooks: signature verification, storage once, idempotent and order-independent
processing, dunning, notifications; the real `stripe` library talks to the fake server."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.audit.models import AuditEvent
from apps.billing.models import StripeEvent, Subscription
from apps.billing.quotas import quota_check_ingest
from apps.billing.services import stripe_event_process
from apps.core.errors import ApplicationError
from tests.billing.conftest import GROWTH_PRICE, STARTER_PRICE, sign, stripe_event
from tests.factories import MembershipFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha_customer(alpha, fake_stripe, priced_plans) -> Subscription:
    """Alpha has a Stripe customer (as after starting Checkout) and is still on Free."""
    customer = fake_stripe.add_customer(email="owner@alpha.test")
    return SubscriptionFactory(tenant=alpha, stripe_customer_id=customer["id"])


@pytest.fixture
def alpha_owner(alpha):
    return MembershipFactory(
        tenant=alpha, user=UserFactory(email="owner@alpha.test"), role="owner"
    ).user


def store_audit(tenant, action: str) -> list[AuditEvent]:
    with schema_context(tenant.schema_name):
        return list(AuditEvent.objects.filter(action=action).order_by("id"))


# --- Verification ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "make_signature"),
    [
        ("wrong secret", lambda payload: sign(payload, secret="whsec_someone_else")),
        ("stale timestamp", lambda payload: sign(payload, timestamp=int(time.time()) - 301)),
        ("tampered payload", lambda payload: sign(payload.replace("evt_bad", "evt_other"))),
        ("missing header", lambda payload: ""),
        ("garbage header", lambda payload: "not-a-signature"),
    ],
)
def test_bad_or_stale_signature_is_refused_and_nothing_stored(
    fake_stripe, post_webhook, case, make_signature
):
    payload = stripe_event("invoice.paid", {"id": "in_1", "customer": "cus_x"}, event_id="evt_bad")

    response = post_webhook(payload, signature=make_signature(payload))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert StripeEvent.objects.count() == 0


def test_signed_payload_that_is_not_an_event_is_refused(fake_stripe, post_webhook):
    payload = json.dumps({"hello": "world"})

    response = post_webhook(payload)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"
    assert StripeEvent.objects.count() == 0


def _event_with(**changes) -> str:
    event = json.loads(stripe_event("invoice.paid", {"id": "in_1"}, event_id="evt_shape"))
    event.update(changes)
    return json.dumps(event)


@pytest.mark.parametrize(
    "payload",
    [
        "[1, 2]",
        '"evt"',
        "not json",
        "[" * 5000 + "]" * 5000,
        '{"id": "evt_nan", "type": "invoice.paid", "created": NaN, "data": {"object": {}}}',
        _event_with(created="abc"),
        _event_with(created=1e300),
        _event_with(created=-99999999999999),
        _event_with(created=True),
        _event_with(id={"a": 1}),
        _event_with(id="evt\u0000x"),
        _event_with(id="x" * 101),
        _event_with(type=""),
        _event_with(data=[]),
        _event_with(data={"object": "in_1"}),
        _event_with(data={"object": {"note": "a\u0000b"}}),
    ],
)
def test_a_signed_payload_of_the_wrong_shape_is_refused_not_a_500(
    fake_stripe, post_webhook, payload
):
    response = post_webhook(payload)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"
    assert StripeEvent.objects.count() == 0


def test_an_oversized_body_is_a_json_413_and_nothing_stored(fake_stripe, post_webhook, settings):
    """Django refused it with an HTML 400 (issue 13)."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    payload = stripe_event("invoice.paid", {"id": "in_1", "note": "x" * 2048}, event_id="evt_big")

    response = post_webhook(payload)

    assert response.status_code == 413
    assert response.json() == {
        "error": {
            "code": "too_large",
            "message": "The request body is larger than the upload limit.",
            "fields": {},
        }
    }
    assert StripeEvent.objects.count() == 0


def test_webhook_secret_unset_answers_503_so_stripe_retries(fake_stripe, post_webhook, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    payload = stripe_event("invoice.paid", {"id": "in_1"}, event_id="evt_1")

    response = post_webhook(payload, signature=sign(payload))

    assert response.status_code == 503
    assert StripeEvent.objects.count() == 0


def test_unknown_event_type_is_stored_answered_200_and_ignored(
    fake_stripe, post_webhook, eager_celery, django_capture_on_commit_callbacks
):
    payload = stripe_event("customer.tax_id.created", {"id": "txi_1"}, event_id="evt_unknown")

    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(payload)

    assert response.status_code == 200
    assert response.json() == {"received": True, "id": "evt_unknown", "duplicate": False}
    event = StripeEvent.objects.get()
    assert (event.stripe_id, event.type, event.status) == (
        "evt_unknown",
        "customer.tax_id.created",
        StripeEvent.Status.IGNORED,
    )
    assert fake_stripe.state.requests == []


# --- Idempotency and ordering ---------------------------------------------------------------------


def test_same_event_replayed_100_times_changes_state_once(
    alpha,
    alpha_customer,
    fake_stripe,
    post_webhook,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    remote = fake_stripe.add_subscription(
        customer=alpha_customer.stripe_customer_id, price=GROWTH_PRICE
    )
    payload = stripe_event("customer.subscription.created", remote, event_id="evt_replayed")

    with django_capture_on_commit_callbacks(execute=True):
        responses = [post_webhook(payload) for _ in range(100)]

    assert [r.status_code for r in responses] == [200] * 100
    assert [r.json()["duplicate"] for r in responses] == [False] + [True] * 99
    assert StripeEvent.objects.filter(stripe_id="evt_replayed").count() == 1
    event = StripeEvent.objects.get(stripe_id="evt_replayed")
    assert (event.status, event.attempts, event.tenant_id) == ("processed", 1, alpha.pk)
    sub = Subscription.objects.get(tenant=alpha)
    assert (sub.plan.code, sub.status, sub.stripe_subscription_id) == (
        "growth",
        "active",
        remote["id"],
    )
    changes = store_audit(alpha, "billing.plan_changed")
    assert len(changes) == 1
    assert changes[0].details["plan"] == {"from": "free", "to": "growth"}
    assert changes[0].actor_label == "stripe"
    # Stripe was asked once: the 99 replays found the event processed.
    assert len(fake_stripe.requests_to("GET", f"/v1/subscriptions/{remote['id']}")) == 1


def test_replays_after_processing_do_not_dispatch_again(
    alpha,
    alpha_customer,
    fake_stripe,
    post_webhook,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    remote = fake_stripe.add_subscription(
        customer=alpha_customer.stripe_customer_id, price=STARTER_PRICE
    )
    payload = stripe_event("customer.subscription.updated", remote, event_id="evt_once")

    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            post_webhook(payload)

    assert len(callbacks) == 0  # the last delivery found the event processed
    assert len(fake_stripe.requests_to("GET", f"/v1/subscriptions/{remote['id']}")) == 1
    assert len(store_audit(alpha, "billing.plan_changed")) == 1


def test_updated_delivered_before_created_ends_in_the_current_state(
    alpha,
    alpha_customer,
    fake_stripe,
    post_webhook,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    # Stripe's current truth: the subscription went active on Growth (the later change).
    remote = fake_stripe.add_subscription(
        customer=alpha_customer.stripe_customer_id, price=GROWTH_PRICE
    )
    created_snapshot = {
        **remote,
        "status": "incomplete",
        "items": {
            "data": [
                {"price": {"id": STARTER_PRICE}, "current_period_start": 1, "current_period_end": 2}
            ]
        },
    }
    updated = stripe_event("customer.subscription.updated", remote, event_id="evt_2", created=200)
    created = stripe_event(
        "customer.subscription.created", created_snapshot, event_id="evt_1", created=100
    )

    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(updated)
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(created)

    sub = Subscription.objects.get(tenant=alpha)
    assert (sub.plan.code, sub.status) == ("growth", "active")
    assert sub.current_period_end.timestamp() == 1_782_592_000
    assert list(StripeEvent.objects.order_by("stripe_id").values_list("stripe_id", "status")) == [
        ("evt_1", "processed"),
        ("evt_2", "processed"),
    ]
    # The late `created` event re-read the same state: no second change.
    assert len(store_audit(alpha, "billing.plan_changed")) == 1
    assert store_audit(alpha, "billing.subscription_updated") == []


def test_late_event_of_an_old_canceled_subscription_does_not_replace_the_live_one(
    alpha, alpha_customer, fake_stripe
):
    customer = alpha_customer.stripe_customer_id
    old = fake_stripe.add_subscription(customer=customer, price=STARTER_PRICE, status="canceled")
    new = fake_stripe.add_subscription(customer=customer, price=GROWTH_PRICE)
    alpha_customer.stripe_subscription_id = new["id"]
    alpha_customer.status = "active"
    alpha_customer.plan_id = (
        Subscription._meta.get_field("plan").related_model.objects.get(code="growth").pk
    )
    alpha_customer.save()
    StripeEvent.objects.create(
        stripe_id="evt_old",
        type="customer.subscription.deleted",
        stripe_created_at=timezone.now(),
        payload=json.loads(stripe_event("customer.subscription.deleted", old, event_id="evt_old")),
    )

    assert stripe_event_process(stripe_event_id="evt_old") == "processed"

    sub = Subscription.objects.get(tenant=alpha)
    assert (sub.plan.code, sub.status, sub.stripe_subscription_id) == (
        "growth",
        "active",
        new["id"],
    )


def test_deleted_subscription_moves_the_store_to_free(
    alpha,
    alpha_customer,
    fake_stripe,
    post_webhook,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    remote = fake_stripe.add_subscription(
        customer=alpha_customer.stripe_customer_id, price=STARTER_PRICE
    )
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(stripe_event("customer.subscription.created", remote, event_id="evt_c"))
    fake_stripe.state.subscriptions[remote["id"]]["status"] = "canceled"

    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(stripe_event("customer.subscription.deleted", remote, event_id="evt_d"))

    sub = Subscription.objects.get(tenant=alpha)
    assert (sub.plan.code, sub.status) == ("free", "canceled")
    assert [e.details["plan"] for e in store_audit(alpha, "billing.plan_changed")] == [
        {"from": "free", "to": "starter"},
        {"from": "starter", "to": "free"},
    ]


def test_checkout_completed_links_the_store_and_mirrors_the_subscription(
    alpha,
    fake_stripe,
    priced_plans,
    post_webhook,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    customer = fake_stripe.add_customer()
    remote = fake_stripe.add_subscription(
        customer=customer["id"], price=STARTER_PRICE, status="trialing", trial_end=1_781_000_000
    )
    session = {
        "id": "cs_1",
        "object": "checkout.session",
        "mode": "subscription",
        "customer": customer["id"],
        "subscription": remote["id"],
        "client_reference_id": str(alpha.pk),
    }

    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(stripe_event("checkout.session.completed", session, event_id="evt_cs"))

    sub = Subscription.objects.get(tenant=alpha)
    assert (sub.stripe_customer_id, sub.plan.code, sub.status) == (
        customer["id"],
        "starter",
        "trialing",
    )
    assert sub.trial_end.timestamp() == 1_781_000_000
    assert StripeEvent.objects.get(stripe_id="evt_cs").tenant_id == alpha.pk


def test_event_for_an_unknown_customer_is_ignored_without_touching_any_store(
    alpha, beta, fake_stripe, post_webhook, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(
            stripe_event("invoice.paid", {"id": "in_9", "customer": "cus_nobody"}, event_id="evt_x")
        )

    event = StripeEvent.objects.get(stripe_id="evt_x")
    assert (event.status, event.tenant_id) == ("ignored", None)
    assert Subscription.objects.count() == 0
    assert store_audit(alpha, "billing.invoice_paid") == []
    assert store_audit(beta, "billing.invoice_paid") == []


def test_stripe_unreachable_marks_the_event_failed_and_a_retry_processes_it(
    alpha, alpha_customer, fake_stripe
):
    remote = fake_stripe.add_subscription(
        customer=alpha_customer.stripe_customer_id, price=STARTER_PRICE
    )
    StripeEvent.objects.create(
        stripe_id="evt_r",
        type="customer.subscription.updated",
        stripe_created_at=timezone.now(),
        payload=json.loads(stripe_event("customer.subscription.updated", remote, event_id="evt_r")),
    )
    fake_stripe.fail_next("GET", f"/v1/subscriptions/{remote['id']}", 500)

    with pytest.raises(Exception, match="Injected failure"):
        stripe_event_process(stripe_event_id="evt_r")

    event = StripeEvent.objects.get(stripe_id="evt_r")
    assert (event.status, event.attempts) == ("failed", 1)
    assert Subscription.objects.get(tenant=alpha).plan.code == "free"

    assert stripe_event_process(stripe_event_id="evt_r") == "processed"
    event.refresh_from_db()
    assert (event.status, event.attempts, event.last_error) == ("processed", 2, "")
    assert Subscription.objects.get(tenant=alpha).plan.code == "starter"


# --- Dunning and notifications --------------------------------------------------------------------


def test_payment_failed_starts_grace_notifies_owner_and_paid_invoice_ends_it(
    alpha,
    alpha_customer,
    alpha_owner,
    fake_stripe,
    post_webhook,
    eager_celery,
    django_capture_on_commit_callbacks,
    settings,
):
    invoice = fake_stripe.add_invoice(customer=alpha_customer.stripe_customer_id, status="open")
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(stripe_event("invoice.payment_failed", invoice, event_id="evt_f"))

    sub = Subscription.objects.get(tenant=alpha)
    assert sub.payment_failed_at >= before
    assert sub.grace_until == sub.payment_failed_at + timedelta(days=settings.BILLING_GRACE_DAYS)
    [failed] = store_audit(alpha, "billing.payment_failed")
    assert failed.details["invoice"] == invoice["id"]
    assert failed.details["grace_started"] is True
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["owner@alpha.test"]
    assert mail.outbox[0].subject == "[Alpha Store] A payment failed"
    assert "http://alpha.localhost/billing/" in mail.outbox[0].body
    # Within the grace period ingestion continues; after it, the store is read-only.
    quota_check_ingest(tenant=alpha, amount=1, now=sub.grace_until - timedelta(seconds=1))
    with pytest.raises(ApplicationError) as refused:
        quota_check_ingest(tenant=alpha, amount=1, now=sub.grace_until)
    assert (refused.value.code, refused.value.status_code) == ("payment_overdue", 402)

    fake_stripe.state.invoices[invoice["id"]]["status"] = "paid"
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(stripe_event("invoice.paid", {**invoice, "status": "paid"}, event_id="evt_p"))

    sub.refresh_from_db()
    assert (sub.grace_until, sub.payment_failed_at) == (None, None)
    assert len(store_audit(alpha, "billing.payment_recovered")) == 1
    quota_check_ingest(tenant=alpha, amount=1, now=timezone.now() + timedelta(days=30))


def test_payment_failed_delivered_after_the_invoice_was_paid_starts_no_dunning(
    alpha, alpha_customer, alpha_owner, fake_stripe
):
    invoice = fake_stripe.add_invoice(customer=alpha_customer.stripe_customer_id, status="paid")
    StripeEvent.objects.create(
        stripe_id="evt_late",
        type="invoice.payment_failed",
        stripe_created_at=timezone.now(),
        payload=json.loads(
            stripe_event(
                "invoice.payment_failed", {**invoice, "status": "open"}, event_id="evt_late"
            )
        ),
    )

    assert stripe_event_process(stripe_event_id="evt_late") == "processed"

    assert Subscription.objects.get(tenant=alpha).grace_until is None
    assert store_audit(alpha, "billing.payment_failed") == []
    assert mail.outbox == []


def test_second_failed_attempt_does_not_extend_the_grace_period(
    alpha,
    alpha_customer,
    fake_stripe,
    post_webhook,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    invoice = fake_stripe.add_invoice(customer=alpha_customer.stripe_customer_id)
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(stripe_event("invoice.payment_failed", invoice, event_id="evt_f1"))
    first_grace = Subscription.objects.get(tenant=alpha).grace_until

    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(stripe_event("invoice.payment_failed", invoice, event_id="evt_f2"))

    assert Subscription.objects.get(tenant=alpha).grace_until == first_grace
    assert [e.details["grace_started"] for e in store_audit(alpha, "billing.payment_failed")] == [
        True,
        False,
    ]


def test_payment_action_required_and_trial_will_end_email_the_owner(
    alpha,
    alpha_customer,
    alpha_owner,
    fake_stripe,
    post_webhook,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    invoice = fake_stripe.add_invoice(customer=alpha_customer.stripe_customer_id)
    remote = fake_stripe.add_subscription(
        customer=alpha_customer.stripe_customer_id,
        price=STARTER_PRICE,
        status="trialing",
        trial_end=1_781_000_000,
    )

    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(stripe_event("invoice.payment_action_required", invoice, event_id="evt_a"))
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(stripe_event("customer.subscription.trial_will_end", remote, event_id="evt_t"))

    assert [m.subject for m in mail.outbox] == [
        "[Alpha Store] Confirm a payment",
        "[Alpha Store] Your trial ends soon",
    ]
    assert invoice["hosted_invoice_url"] in mail.outbox[0].body
    assert "2026-06-09" in mail.outbox[1].body
    assert len(store_audit(alpha, "billing.payment_action_required")) == 1
    assert store_audit(alpha, "billing.trial_will_end")[0].details["trial_end"] == (
        "2026-06-09T10:13:20+00:00"
    )
