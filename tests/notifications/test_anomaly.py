"""The usage anomaly rule: quiet on steady traffic, fires on a spike, a drop and a burst of
auth failures; a flag writes a notification and an audit event, once per cooldown."""

from datetime import UTC, datetime, timedelta

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.core.cache import redis_client, tenant_key
from apps.notifications.anomaly import (
    MinuteCounts,
    _add,
    _usage_write,
    api_request_count,
    api_usage_flush,
    detect,
    minute_of,
    usage_window,
)
from apps.notifications.models import Notification
from apps.notifications.services import usage_anomaly_check
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

START = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def api_request_record(status_code: int, *, schema_name: str, now: datetime) -> None:
    """Count one API request of the store in the minute of `now`, written to Redis at once
    (the request path buffers instead: `api_request_count`)."""
    counts = {}
    _add(counts, schema_name, minute_of(now), status_code)
    _usage_write(counts)


@pytest.fixture
def clean_usage(alpha, beta):
    def clear():
        api_usage_flush()  # counts buffered by earlier requests of this process
        for store in (alpha, beta):
            for key in redis_client().scan_iter(
                match=tenant_key("api_usage", "*", schema_name=store.schema_name)
            ):
                redis_client().delete(key)

    clear()
    yield
    clear()


def _traffic(schema: str, minute: int, requests: int, unauthorized: int = 0, other_4xx: int = 0):
    at = START + timedelta(minutes=minute, seconds=10)
    for n in range(requests):
        if n < unauthorized:
            status = 401
        elif n < unauthorized + other_4xx:
            status = 404
        else:
            status = 200
        api_request_record(status, schema_name=schema, now=at)


def _steady(schema: str, minutes: int = 60):
    # 40 to 46 requests a minute, 1 auth failure every few minutes: ordinary jitter.
    for minute in range(minutes):
        _traffic(schema, minute, 40 + (minute * 7) % 7, unauthorized=1 if minute % 4 == 0 else 0)


def test_steady_traffic_raises_nothing(alpha, clean_usage):
    owner = UserFactory()
    MembershipFactory(user=owner, tenant=alpha)
    _steady(alpha.schema_name, minutes=61)

    with tenant_context(alpha):
        flags = usage_anomaly_check(now=START + timedelta(minutes=61, seconds=5))
        notifications = Notification.objects.count()
        audits = AuditEvent.objects.filter(action="usage.anomaly_flagged").count()

    assert flags == []
    assert notifications == 0
    assert audits == 0


def test_a_spike_flags_once_with_notification_and_audit(alpha, clean_usage):
    owner = UserFactory()
    MembershipFactory(user=owner, tenant=alpha)
    _steady(alpha.schema_name, minutes=60)
    _traffic(alpha.schema_name, 60, 400)

    with tenant_context(alpha):
        flags = usage_anomaly_check(now=START + timedelta(minutes=61, seconds=5))
        again = usage_anomaly_check(now=START + timedelta(minutes=61, seconds=30))
        notifications = list(
            Notification.objects.values_list("user_id", "kind", "severity", "title")
        )
        audit = AuditEvent.objects.get(action="usage.anomaly_flagged")

    assert [flag.rule for flag in flags] == ["spike"]
    assert again == []
    assert notifications == [(owner.pk, "usage.anomaly", "critical", "API traffic spike")]
    assert audit.target_id == "spike"
    assert audit.actor_label == "anomaly detector"
    assert audit.details["observed"] == 400
    assert audit.details["minute"] == "2024-03-01T13:00:00+00:00"


def test_a_burst_of_auth_failures_flags(alpha, clean_usage):
    MembershipFactory(user=UserFactory(), tenant=alpha)
    _steady(alpha.schema_name, minutes=60)
    _traffic(alpha.schema_name, 60, 50, unauthorized=45)

    with tenant_context(alpha):
        flags = usage_anomaly_check(now=START + timedelta(minutes=61, seconds=5))

    assert sorted(flag.rule for flag in flags) == ["auth_failures"]


def test_detect_flags_a_drop_and_needs_warm_up():
    steady = [MinuteCounts(total=100 + (i % 5)) for i in range(60)]
    quiet = MinuteCounts(total=5)

    assert [flag.rule for flag in detect(steady, quiet, 60)] == ["drop"]
    # A new store (fewer minutes than the warm-up) has no baseline for spikes or drops.
    assert detect(steady[:10], quiet, 10) == []
    assert detect(steady[:10], MinuteCounts(total=1000), 10) == []


def test_detect_flags_a_client_error_rate():
    history = [MinuteCounts(total=80, client_errors=2) for _ in range(30)]

    flags = detect(history, MinuteCounts(total=80, client_errors=60), 30)

    assert [(flag.rule, round(flag.observed, 2)) for flag in flags] == [("client_errors", 0.75)]


def test_api_requests_are_counted_per_store(alpha, beta, store_client, clean_usage):
    client = store_client(alpha)
    client.get("/api/v1/items/")  # no key: 401
    client.get("/api/v1/items/")
    api_usage_flush()  # what the process's flush thread does every second

    with tenant_context(alpha):
        keys = [k.decode() for k in redis_client().scan_iter(match=tenant_key("api_usage", "2*"))]
        counts = redis_client().hgetall(keys[0])
    beta_keys = list(
        redis_client().scan_iter(match=tenant_key("api_usage", "2*", schema_name=beta.schema_name))
    )

    assert len(keys) == 1
    assert {k.decode(): int(v) for k, v in counts.items()} == {"total": 2, "4xx": 2, "401": 2}
    assert beta_keys == []


def _counted_since(minute: int) -> MinuteCounts:
    """The connection's store's counts from `minute` to now, added up (a test may cross a
    minute boundary)."""
    now = minute_of(datetime.now(UTC))
    counts, _ = usage_window(end_minute=now, minutes=now - minute + 1)
    return MinuteCounts(
        total=sum(c.total for c in counts),
        client_errors=sum(c.client_errors for c in counts),
        auth_failures=sum(c.auth_failures for c in counts),
    )


def test_buffered_counts_reach_redis_per_store(alpha, beta, clean_usage):
    minute = minute_of(datetime.now(UTC))
    for status in (200, 200, 404, 401):
        api_request_count(status, schema_name=alpha.schema_name)
    api_request_count(200, schema_name=beta.schema_name)

    # The process's flush thread may have written some already: Redis holds the truth.
    api_usage_flush()

    with tenant_context(alpha):
        alpha_counts = _counted_since(minute)
    with tenant_context(beta):
        beta_counts = _counted_since(minute)
    assert alpha_counts == MinuteCounts(total=4, client_errors=2, auth_failures=1)
    assert beta_counts == MinuteCounts(total=1)
    assert api_usage_flush() == 0  # nothing is counted twice


def test_buffered_counts_wait_while_redis_is_down(alpha, clean_usage, settings):
    minute = minute_of(datetime.now(UTC))
    redis_url = settings.REDIS_URL
    api_request_count(200, schema_name=alpha.schema_name)
    redis_client.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    try:
        written_while_down = api_usage_flush()
    finally:
        redis_client.cache_clear()
        settings.REDIS_URL = redis_url
    api_request_count(200, schema_name=alpha.schema_name)

    api_usage_flush()

    with tenant_context(alpha):
        counts = _counted_since(minute)
    assert written_while_down == 0
    assert counts == MinuteCounts(total=2)
