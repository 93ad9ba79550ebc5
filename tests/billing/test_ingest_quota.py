"""The events API enforces the plan: over quota → 429 and nothing from the batch stored; read-only
after the dunning grace period → 402; accepted events are counted for billing."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.billing.models import Plan
from apps.billing.quotas import usage_record
from apps.billing.selectors import usage_month_to_date
from apps.billing.services import subscription_plan_assign
from apps.catalog.models import Event
from tests.factories import SubscriptionFactory, api_key_for, event_payload

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/bulk"
FREE_EVENTS = 1_000_000


@pytest.fixture
def ingest(store_client):
    def post(tenant, rows):
        _, key = api_key_for(tenant, scopes=("ingest",))
        client = store_client(tenant, HTTP_AUTHORIZATION=f"Bearer {key}")
        return client.post(URL, data=orjson.dumps(rows), content_type="application/json")

    return post


def _stored(tenant) -> int:
    with tenant_context(tenant):
        return Event.objects.count()


def test_batch_past_the_quota_is_429_and_stores_nothing(alpha, ingest):
    usage_record(tenant=alpha, metric="events_ingested", amount=FREE_EVENTS - 1)
    rows = [event_payload(event_id="q-1"), event_payload(event_id="q-2")]

    response = ingest(alpha, rows)

    assert response.status_code == 429
    assert response.json() == {
        "error": {
            "code": "quota_exceeded",
            "message": "Monthly quota of 1000000 events on the Free plan reached (999999 used, "
            "this batch has 2). Upgrade on the billing page.",
            "fields": {},
        }
    }
    assert int(response["Retry-After"]) > 0
    assert _stored(alpha) == 0
    assert usage_month_to_date(alpha)["events_ingested"] == FREE_EVENTS - 1


def test_batch_that_fits_is_stored_and_counted(
    alpha, beta, ingest, django_capture_on_commit_callbacks
):
    usage_record(tenant=alpha, metric="events_ingested", amount=FREE_EVENTS - 2)
    rows = [event_payload(event_id="q-1"), event_payload(event_id="q-2")]

    with django_capture_on_commit_callbacks(execute=True):
        response = ingest(alpha, rows)

    assert response.status_code == 202
    assert _stored(alpha) == 2
    assert usage_month_to_date(alpha)["events_ingested"] == FREE_EVENTS
    assert usage_month_to_date(beta)["events_ingested"] == 0


def test_one_stores_quota_never_blocks_another(alpha, beta, ingest):
    usage_record(tenant=alpha, metric="events_ingested", amount=FREE_EVENTS)

    response = ingest(beta, [event_payload(event_id="b-1", item_id="beta-only")])

    assert response.status_code == 202
    assert _stored(beta) == 1


def test_plan_billing_overage_keeps_ingesting_past_the_quota(alpha, ingest):
    subscription_plan_assign(tenant=alpha, plan_code="growth", actor_label="test")
    usage_record(tenant=alpha, metric="events_ingested", amount=5_000_000)

    response = ingest(alpha, [event_payload(event_id="g-1")])

    assert response.status_code == 202
    assert _stored(alpha) == 1


def test_store_past_its_grace_period_is_read_only_for_ingestion(alpha, ingest):
    SubscriptionFactory(
        tenant=alpha,
        plan=Plan.objects.get(code="starter"),
        status="past_due",
        payment_failed_at=timezone.now() - timedelta(days=8),
        grace_until=timezone.now() - timedelta(days=1),
    )

    response = ingest(alpha, [event_payload(event_id="r-1")])

    assert response.status_code == 402
    assert response.json()["error"]["code"] == "payment_overdue"
    assert _stored(alpha) == 0
