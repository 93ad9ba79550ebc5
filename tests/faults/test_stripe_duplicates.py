"""1,000 deliveries of one Stripe event (signed with Stripe's scheme), 16 at a time, to the
production server with a real worker processing them: every delivery is answered 200, the
event is stored once, Stripe is asked once, and the store's plan changes once."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.billing.models import Plan, StripeEvent, Subscription
from tests.billing.conftest import GROWTH_PRICE, WEBHOOK_SECRET, sign, stripe_event
from tests.billing.fake_stripe import API_KEY, FakeStripe
from tests.faults.conftest import server_env, test_database_url
from tests.faults.traffic import Client
from tests.processes import PrivateRedis, wait_until
from tests.transactions import committed

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

DELIVERIES = 1_000
SENDERS = 16


@pytest.fixture
def stripe_store(fault_stores, django_db_blocker):
    """flt-3 linked to a Stripe customer of the fake server; Growth priced. Restored after."""
    fake = FakeStripe()
    fake.start()
    store = fault_stores[2]
    customer = fake.add_customer(email="owner@faults.test")

    def link():
        growth = Plan.objects.get(code="growth")
        subscription = Subscription.objects.get(tenant=store.tenant)
        saved = (
            growth.stripe_price_id,
            {
                name: getattr(subscription, name)
                for name in ("plan_id", "status", "stripe_customer_id", "stripe_subscription_id")
            },
        )
        Plan.objects.filter(pk=growth.pk).update(stripe_price_id=GROWTH_PRICE)
        Subscription.objects.filter(pk=subscription.pk).update(stripe_customer_id=customer["id"])
        return growth.pk, subscription.pk, saved

    def restore():
        Plan.objects.filter(pk=growth_pk).update(stripe_price_id=saved_price)
        Subscription.objects.filter(pk=subscription_pk).update(**saved_subscription)
        StripeEvent.objects.filter(stripe_id__startswith="evt_faults_").delete()

    # Committed (another connection): the server and the worker must see them.
    with django_db_blocker.unblock():
        growth_pk, subscription_pk, (saved_price, saved_subscription) = committed(link)
    yield store, fake, customer
    fake.stop()
    with django_db_blocker.unblock():
        committed(restore)


def test_1000_duplicate_stripe_events_have_one_effect(procs, stripe_store):
    store, fake, customer = stripe_store
    redis = PrivateRedis(procs)
    redis.start()
    env = server_env(
        database_url=test_database_url(),
        redis_url=redis.url,
        STRIPE_API_BASE=fake.url,
        STRIPE_SECRET_KEY=API_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_MAX_NETWORK_RETRIES="0",
    )
    web = procs.web("granian", env=env)
    procs.worker(env=env, queues=["default"], concurrency=1)
    remote = fake.add_subscription(customer=customer["id"], price=GROWTH_PRICE)
    payload = stripe_event("customer.subscription.created", remote, event_id="evt_faults_dup")

    answers = []
    lock = threading.Lock()

    def send(count: int) -> None:
        client = Client(web.port, {"Host": "localhost"})
        mine = []
        for _ in range(count):
            client.headers["Stripe-Signature"] = sign(payload)
            mine.append(client.request("POST", "/billing/stripe/webhook/", payload.encode()))
        client.close()
        with lock:
            answers.extend(mine)

    threads = [threading.Thread(target=send, args=(DELIVERIES // SENDERS,)) for _ in range(SENDERS)]
    threads += [threading.Thread(target=send, args=(DELIVERIES % SENDERS,))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert Counter(a.status for a in answers) == {200: DELIVERIES}
    assert Counter(a.json()["duplicate"] for a in answers) == {False: 1, True: DELIVERIES - 1}
    event = wait_until(
        lambda: StripeEvent.objects.filter(stripe_id="evt_faults_dup", status="processed").first(),
        timeout=60,
        message="the event to be processed",
    )
    assert StripeEvent.objects.filter(stripe_id="evt_faults_dup").count() == 1
    assert (event.attempts, event.tenant_id) == (1, store.tenant.pk)
    subscription = Subscription.objects.get(tenant=store.tenant)
    assert (subscription.plan.code, subscription.stripe_subscription_id) == ("growth", remote["id"])
    with tenant_context(store.tenant):
        changes = list(AuditEvent.objects.filter(action="billing.plan_changed"))
    assert [change.details["plan"] for change in changes] == [
        {"from": "enterprise", "to": "growth"}
    ]
    assert len(fake.requests_to("GET", f"/v1/subscriptions/{remote['id']}")) == 1
