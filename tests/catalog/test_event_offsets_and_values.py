"""POST /api/v1/events/bulk at the edges of its fields: UTC offsets PostgreSQL cannot read
(it takes ±15:59 at most; Python parses any below ±24:00) are stored as their UTC instant on
both write paths (parameters up to SMALL_BATCH_ROWS, COPY beyond), and a `value` beyond
EVENT_VALUE_MAX is a row error naming `value`."""

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from django.utils import timezone as django_timezone
from django_tenants.utils import tenant_context

from apps.catalog import event_sql
from apps.catalog.models import Event, Shopper
from apps.catalog.validation import EVENT_VALUE_MAX, events_validate
from tests.factories import event_payload

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/bulk"
OFFSETS = {
    "+16:00": timedelta(hours=16),
    "-23:59": -timedelta(hours=23, minutes=59),
    "+05:30:15.123456": timedelta(hours=5, minutes=30, seconds=15, microseconds=123456),
}


def _post(client, rows):
    return client.post(URL, data=orjson.dumps(rows), content_type="application/json")


def _written_in(instant: datetime, offset: str) -> str:
    """`instant` as a client in the zone `offset` writes it (ISO 8601, that offset)."""
    written = instant.astimezone(timezone(OFFSETS[offset])).isoformat()
    assert written.endswith(offset)
    return written


@pytest.mark.parametrize("offset", sorted(OFFSETS))
def test_validation_returns_the_utc_instant_of_any_offset(offset):
    instant = datetime(2029, 12, 31, 18, 0, 0, 654321, tzinfo=UTC)

    valid, errors, _ = events_validate(
        [event_payload(timestamp=_written_in(instant, offset))],
        now=datetime(2030, 1, 1, tzinfo=UTC),
    )

    assert errors == []
    assert valid[0][5] == instant
    assert valid[0][5].tzinfo is UTC


@pytest.mark.parametrize("size", [1, event_sql.SMALL_BATCH_ROWS + 1], ids=["params", "copy"])
@pytest.mark.parametrize("offset", sorted(OFFSETS))
def test_a_batch_with_an_unusual_offset_is_stored_as_its_utc_instant(alpha, api, offset, size):
    # Given events written with an offset PostgreSQL would refuse, a day ago
    instant = django_timezone.now().replace(microsecond=250000) - timedelta(days=1)
    rows = [
        event_payload(event_id=f"e-{n}", timestamp=_written_in(instant, offset))
        for n in range(size)
    ]

    # When the batch is sent
    response = _post(api(alpha), rows)

    # Then all are accepted and stored, the shopper too, at the same UTC instant
    assert response.status_code == 202
    assert response.json() == {"accepted": size, "duplicates": 0, "errors": []}
    with tenant_context(alpha):
        stored = set(Event.objects.values_list("timestamp", flat=True))
        seen = Shopper.objects.values_list("first_seen_at", "last_seen_at").get()
    assert stored == {instant}
    assert seen == (instant, instant)


@pytest.mark.parametrize(
    ("timestamp", "message"),
    [
        ("2029-12-31T12:00:00+24:00", "Must be an ISO 8601 date-time with a time zone."),
        # 00:06 UTC: the offset is honoured before the 5 minutes ahead are checked
        ("2029-12-31T00:07:00-23:59", "Must not be more than 5 minutes in the future."),
        ("0001-01-01T00:00:00+16:00", "Must not be more than 3 years in the past."),
        ("9999-12-31T23:59:59-23:59", "Must not be more than 5 minutes in the future."),
    ],
)
def test_offsets_out_of_range_or_times_out_of_bounds_stay_refused(alpha, timestamp, message):
    valid, errors, _ = events_validate(
        [event_payload(timestamp=timestamp)], now=datetime(2030, 1, 1, tzinfo=UTC)
    )

    assert valid == []
    assert [error.as_dict() for error in errors] == [
        {"index": 0, "field": "timestamp", "message": message}
    ]


# --- value bound ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [1e27, 1e12 + 0.01, 10**15])
@pytest.mark.parametrize("kind", ["purchase", "add_to_cart"])
def test_a_value_over_the_bound_is_a_row_error_naming_value(alpha, api, kind, value):
    rows = [
        event_payload(event_id="ok", type="purchase", value=EVENT_VALUE_MAX),
        event_payload(event_id="absurd", type=kind, value=value),
    ]

    response = _post(api(alpha), rows)

    assert response.status_code == 202
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "errors": [{"index": 1, "field": "value", "message": "A quantity must be at most 1e12."}],
    }
    with tenant_context(alpha):
        assert list(Event.objects.values_list("event_id", "value")) == [("ok", 1e12)]


def test_a_batch_of_only_absurd_values_stores_nothing(alpha, api):
    rows = [
        event_payload(event_id=f"absurd-{n}", type="purchase", value=1e27)
        for n in range(event_sql.SMALL_BATCH_ROWS + 1)
    ]

    response = _post(api(alpha), rows)

    assert response.status_code == 202
    assert response.json()["accepted"] == 0
    assert {(e["field"], e["message"]) for e in response.json()["errors"]} == {
        ("value", "A quantity must be at most 1e12.")
    }
    with tenant_context(alpha):
        assert (Event.objects.count(), Shopper.objects.count()) == (0, 0)
