"""Quotas exact under concurrency (issue 13): batches reserve their new events atomically in
Redis; a batch that does not fit is refused whole; a rolled-back batch gives its reservation
back; with Redis down ingestion goes on, counted in PostgreSQL and billed afterwards."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import orjson
import pytest
import redis
from django.db import connection, connections
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.billing.models import Plan, UsageFallback, UsageRecord
from apps.billing.quotas import usage_record
from apps.billing.selectors import usage_month_to_date
from apps.billing.services import usage_rollup
from apps.catalog import event_sql
from apps.catalog.models import Event
from apps.catalog.services import events_ingest
from apps.core.errors import ApplicationError
from apps.tenants.models import Tenant
from apps.tenants.selectors import store_domain
from apps.tenants.services import tenant_create
from tests.factories import api_key_for, event_payload, subscribe_store
from tests.transactions import committed

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/bulk"
QUOTA = 100


def _batch(prefix: str, n: int = 20) -> list[dict]:
    return [
        event_payload(event_id=f"{prefix}-{i}", user_id=f"{prefix}-u", item_id=f"it-{i}")
        for i in range(n)
    ]


@pytest.fixture
def small_plan():
    """A committed plan with 100 events a month that blocks overage."""
    code = f"tiny-{uuid.uuid4().hex[:6]}"
    plan = committed(
        lambda: Plan.objects.create(
            code=code, name="Tiny", events_per_month=QUOTA, overage_billed=False
        )
    )
    yield plan
    committed(lambda: Plan.objects.filter(pk=plan.pk).delete())


@pytest.fixture
def race_store(small_plan):
    """A committed store on the small plan, dropped afterwards."""
    slug = f"quota-race-{uuid.uuid4().hex[:6]}"
    tenant = committed(lambda: tenant_create(slug=slug, name="Quota race"))
    committed(lambda: subscribe_store(tenant, small_plan.code))
    yield tenant

    def drop():
        connection.set_schema_to_public()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
        Tenant.objects.filter(pk=tenant.pk).delete()

    committed(drop)


def _stored(tenant) -> int:
    def count():
        with tenant_context(tenant):
            return Event.objects.count()

    return committed(count)


def test_concurrent_batches_past_the_quota_store_exactly_the_allowed_number(race_store):
    # Given 80 of 100 events used and four clients, each with a 20-event batch
    tenant = race_store
    usage_record(tenant=tenant, metric="events_ingested", amount=80)
    _, key = committed(lambda: api_key_for(tenant, scopes=("ingest",)))
    start = threading.Barrier(4)
    statuses: list[int] = []
    bodies: list[dict] = []

    def client(n: int) -> None:
        try:
            http = Client(HTTP_HOST=store_domain(tenant.slug), HTTP_AUTHORIZATION=f"Bearer {key}")
            body = orjson.dumps(_batch(f"b{n}"))
            start.wait()
            response = http.post(URL, data=body, content_type="application/json")
            statuses.append(response.status_code)
            bodies.append(response.json())
        finally:
            connections.close_all()

    # When they send them at the same time, each on its own connection
    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then exactly one batch fits: 20 stored, three refused whole with 429, the month at 100
    assert sorted(statuses) == [202, 429, 429, 429]
    assert {"accepted": 20, "duplicates": 0, "errors": []} in bodies
    assert sorted(b["error"]["code"] for b in bodies if "error" in b) == ["quota_exceeded"] * 3
    assert _stored(tenant) == 20
    assert usage_month_to_date(tenant)["events_ingested"] == 100


def test_a_batch_reserves_only_its_new_events(race_store):
    # Given 90 used, and 15 events of a batch already stored
    tenant = race_store
    usage_record(tenant=tenant, metric="events_ingested", amount=75)
    rows = _batch("d", 25)

    def ingest(batch):
        with tenant_context(tenant):
            return events_ingest(rows=batch, source="api")

    committed(lambda: ingest(rows[:15]))
    assert usage_month_to_date(tenant)["events_ingested"] == 90

    # When the whole batch of 25 is sent again (10 new events)
    result = committed(lambda: ingest(rows))

    # Then it fits: 10 reserved and stored, the 15 duplicates are free
    assert (result.accepted, result.duplicates) == (10, 15)
    assert _stored(tenant) == 25
    assert usage_month_to_date(tenant)["events_ingested"] == 100


def test_a_rolled_back_batch_gives_its_reservation_back(alpha, monkeypatch):
    # Given 50 used and a batch whose transaction fails after its reservation
    usage_record(tenant=alpha, metric="events_ingested", amount=50)
    monkeypatch.setattr(
        event_sql, "shoppers_upsert", lambda staging: f"SELECT 1/0 FROM {staging} s"
    )

    # When the batch is ingested
    with tenant_context(alpha), pytest.raises(Exception, match="division by zero"):
        events_ingest(rows=_batch("r"), source="api")

    # Then nothing is stored and the month counter is back at 50
    with tenant_context(alpha):
        assert Event.objects.count() == 0
    assert usage_month_to_date(alpha)["events_ingested"] == 50


def _stop_redis(monkeypatch) -> None:
    """Every Redis call of the billing and catalog code fails from now on, as with Redis
    stopped."""
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.1, socket_timeout=0.1)
    for module in ("apps.billing.quotas", "apps.billing.selectors", "apps.catalog.services"):
        monkeypatch.setattr(f"{module}.redis_client", lambda: dead, raising=False)
    monkeypatch.setattr("apps.catalog.live.event_counters_add", _raise_redis)


def _raise_redis(**kwargs):
    raise redis.ConnectionError("Redis is stopped")


def test_redis_down_ingestion_goes_on_counted_in_postgresql_and_billed_afterwards(
    alpha, subscribe, monkeypatch
):
    # Given a 100-event plan, 60 events rolled up earlier this month, and Redis stopped
    Plan.objects.create(code="tiny", name="Tiny", events_per_month=QUOTA, overage_billed=False)
    subscribe(alpha, "tiny")
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    earlier = hour - timedelta(hours=1)
    if earlier.month != hour.month:
        pytest.skip("needs an earlier hour in the same month")
    UsageRecord.objects.create(tenant=alpha, metric="events_ingested", hour=earlier, quantity=60)
    _stop_redis(monkeypatch)

    def ingest(rows):
        with tenant_context(alpha):
            return events_ingest(rows=rows, source="api")

    # When batches arrive: 30 events fit, the next 20 would pass the quota
    accepted = ingest(_batch("p", 30))
    with pytest.raises(ApplicationError) as refused:
        ingest(_batch("q", 20))

    # Then the first is stored and counted in PostgreSQL, the second refused whole
    assert accepted.accepted == 30
    assert refused.value.status_code == 429
    assert refused.value.code == "quota_exceeded"
    with tenant_context(alpha):
        assert Event.objects.count() == 30
    assert list(UsageFallback.objects.values_list("tenant_id", "hour", "quantity")) == [
        (alpha.id, hour, 30)
    ]

    # And once Redis is back, the month counter and the rollup include the 30 events
    monkeypatch.undo()
    usage_record(tenant=alpha, metric="events_ingested", amount=5)  # a batch after the outage
    with tenant_context(alpha):
        events_ingest(rows=_batch("s", 1), source="api")
    assert usage_month_to_date(alpha)["events_ingested"] == 5 + 30 + 1
    usage_rollup(now=now + timedelta(hours=1, minutes=10))
    assert UsageRecord.objects.get(tenant=alpha, hour=hour).quantity == 30 + 5
