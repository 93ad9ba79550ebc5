"""POST /api/v1/events/bulk: validation per row, idempotency by event_id, size limits, stubs."""

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog import event_sql
from apps.catalog.models import Event, Item, Shopper
from apps.catalog.services import events_ingest
from tests.factories import event_payload

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/bulk"


def _post(client, body, **extra):
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(URL, data=data, content_type="application/json", **extra)


def _events(tenant):
    with tenant_context(tenant):
        return list(
            Event.objects.order_by("id").values_list("event_id", "user_id", "item_id", "type")
        )


def test_valid_batch_is_committed_and_counted(alpha, api):
    rows = [
        event_payload(event_id="e-1"),
        event_payload(event_id="e-2", type="rating", value=4, user_id="shopper-2"),
        event_payload(event_id=None, type="purchase", value=2, recommendation_id="rec-9"),
    ]

    response = _post(api(alpha), rows)

    assert response.status_code == 202
    assert response.json() == {"accepted": 3, "duplicates": 0, "errors": []}
    assert _events(alpha) == [
        ("e-1", "shopper-1", "alpha-only", "view"),
        ("e-2", "shopper-2", "alpha-only", "rating"),
        (None, "shopper-1", "alpha-only", "purchase"),
    ]
    with tenant_context(alpha):
        purchase = Event.objects.get(type="purchase")
    assert (purchase.value, purchase.recommendation_id) == (2.0, "rec-9")


def test_the_database_going_away_mid_copy_is_a_503_and_stores_nothing(alpha, api, monkeypatch):
    # A large batch is written with psycopg's COPY, outside Django's cursor: PostgreSQL
    # shutting down at that moment (the fault suite's restart) raised psycopg's own error, a 500.
    import psycopg

    def shut_down(cursor, *args, **kwargs):
        raise psycopg.errors.AdminShutdown("terminating connection due to administrator command")

    client = api(alpha)
    client.raise_request_exception = False
    monkeypatch.setattr(psycopg.Cursor, "copy", shut_down)

    rows = [event_payload(event_id=f"e-{n}") for n in range(event_sql.SMALL_BATCH_ROWS + 1)]
    response = _post(client, rows)

    monkeypatch.undo()
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "service_unavailable"
    assert _events(alpha) == []


def test_object_envelope_is_accepted(alpha, api):
    response = _post(api(alpha), {"events": [event_payload()]})

    assert response.status_code == 202
    assert response.json()["accepted"] == 1


def test_event_id_seen_before_is_a_duplicate_stored_once(alpha, api):
    client = api(alpha)
    first = _post(client, [event_payload(event_id="e-1"), event_payload(event_id="e-2")])

    again = _post(
        client,
        [
            event_payload(event_id="e-2"),
            event_payload(event_id="e-3"),
            event_payload(event_id="e-3"),
        ],
    )

    assert first.json() == {"accepted": 2, "duplicates": 0, "errors": []}
    assert again.json() == {"accepted": 1, "duplicates": 2, "errors": []}
    assert [row[0] for row in _events(alpha)] == ["e-1", "e-2", "e-3"]


def test_events_without_event_id_are_never_deduplicated(alpha, api):
    row = event_payload(event_id=None)

    response = _post(api(alpha), [row, row])

    assert response.json() == {"accepted": 2, "duplicates": 0, "errors": []}
    assert len(_events(alpha)) == 2


NOW = "2030-01-01T00:00:00+00:00"
NOW_DT = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"user_id": None}, "user_id", "This field is required (unless session_id is given)."),
        ({"user_id": 7}, "user_id", "Must be a string."),
        ({"user_id": ""}, "user_id", "Must not be blank."),
        ({"user_id": "u" * 129}, "user_id", "At most 128 characters."),
        ({"user_id": "a\x00b"}, "user_id", "Must not contain NUL characters."),
        ({"item_id": None}, "item_id", "This field is required."),
        ({"item_id": ["x"]}, "item_id", "Must be a string."),
        ({"item_id": "   "}, "item_id", "Must not be blank."),
        ({"event_id": 5}, "event_id", "Must be a string."),
        ({"event_id": "e" * 129}, "event_id", "At most 128 characters."),
        ({"type": None}, "type", "This field is required."),
        (
            {"type": "like"},
            "type",
            "Must be one of: add_to_cart, click, dismiss, purchase, rating, refund, view.",
        ),
        (
            {"type": ["view"]},
            "type",
            "Must be one of: add_to_cart, click, dismiss, purchase, rating, refund, view.",
        ),
        # An unhashable type next to an order id (found by the fuzz suite: a 500 before).
        (
            {"type": {}, "order_id": "o-1"},
            "type",
            "Must be one of: add_to_cart, click, dismiss, purchase, rating, refund, view.",
        ),
        (
            {"type": "view", "order_id": "o-1"},
            "order_id",
            "Only purchase and refund events carry an order_id.",
        ),
        ({"value": "3"}, "value", "Must be a number."),
        ({"value": True}, "value", "Must be a number."),
        ({"value": 0}, "value", "A quantity must be greater than 0."),
        ({"type": "rating", "value": 6}, "value", "A rating must be between 1 and 5."),
        ({"type": "rating", "value": 0.5}, "value", "A rating must be between 1 and 5."),
        ({"type": "rating"}, "value", "A rating needs a value between 1 and 5."),
        ({"timestamp": None}, "timestamp", "This field is required."),
        (
            {"timestamp": "yesterday"},
            "timestamp",
            "Must be an ISO 8601 date-time with a time zone.",
        ),
        (
            {"timestamp": 1700000000},
            "timestamp",
            "Must be an ISO 8601 date-time with a time zone.",
        ),
        (
            {"timestamp": "2029-12-31T12:00:00"},
            "timestamp",
            "Must include a time zone (e.g. Z or +02:00).",
        ),
        (
            {"timestamp": "2030-01-01T00:05:01+00:00"},
            "timestamp",
            "Must not be more than 5 minutes in the future.",
        ),
        (
            {"timestamp": "2026-12-31T00:00:00Z"},
            "timestamp",
            "Must not be more than 3 years in the past.",
        ),
        ({"recommendation_id": 12}, "recommendation_id", "Must be a string."),
        ({"recommendation_id": "r" * 65}, "recommendation_id", "At most 64 characters."),
        ({"colour": "red"}, "colour", "Unknown field."),
    ],
)
def test_each_validation_rule_names_its_field(alpha, overrides, field, message):
    row = event_payload(timestamp=NOW)
    for key, value in overrides.items():
        if value is None:
            row.pop(key)
        else:
            row[key] = value
    valid = event_payload(event_id="ok-1", timestamp=NOW)

    with tenant_context(alpha):
        result = events_ingest(rows=[valid, row], now=NOW_DT)
        stored = list(Event.objects.values_list("event_id", flat=True))

    assert result.as_dict() == {
        "accepted": 1,
        "duplicates": 0,
        "errors": [{"index": 1, "field": field, "message": message}],
    }
    assert stored == ["ok-1"]


def test_timestamp_bounds_are_inclusive_and_zones_are_honoured(alpha):
    rows = [
        event_payload(event_id="future", timestamp="2030-01-01T00:05:00+00:00"),
        event_payload(event_id="zoned", timestamp="2030-01-01T02:04:00+02:00"),
        event_payload(event_id="zulu", timestamp="2029-12-31T23:00:00Z"),
    ]

    with tenant_context(alpha):
        result = events_ingest(rows=rows, now=NOW_DT)
        zoned = Event.objects.get(event_id="zoned").timestamp

    assert result.as_dict() == {"accepted": 3, "duplicates": 0, "errors": []}
    assert zoned == datetime(2030, 1, 1, 0, 4, tzinfo=UTC)


def test_every_invalid_row_is_reported_with_every_wrong_field(alpha, api):
    rows = [
        event_payload(event_id="ok"),
        "not an object",
        {"user_id": 1, "type": "view", "timestamp": "nope"},
    ]

    response = _post(api(alpha), rows)

    assert response.status_code == 202
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "errors": [
            {"index": 1, "field": "", "message": "Each event must be a JSON object."},
            {"index": 2, "field": "user_id", "message": "Must be a string."},
            {"index": 2, "field": "item_id", "message": "This field is required."},
            {
                "index": 2,
                "field": "timestamp",
                "message": "Must be an ISO 8601 date-time with a time zone.",
            },
        ],
    }
    assert [row[0] for row in _events(alpha)] == ["ok"]


def test_event_for_unknown_item_creates_a_stub_listed_once_catalogued(alpha, api):
    client = api(alpha)

    _post(client, [event_payload(item_id="new-sku")])
    with tenant_context(alpha):
        stub = Item.objects.values("title", "is_hidden", "is_stub").get(item_id="new-sku")
    listed_before = client.get("/api/v1/items/new-sku").status_code
    in_list_before = client.get("/api/v1/items/").json()["results"]
    put = client.put(
        "/api/v1/items/new-sku",
        data=orjson.dumps({"title": "New thing"}),
        content_type="application/json",
    )

    # a stub: recommendable (not hidden), but not listed as catalog until the store sends it
    assert stub == {"title": "", "is_hidden": False, "is_stub": True}
    assert listed_before == 404
    assert "new-sku" not in [row["item_id"] for row in in_list_before]
    assert put.status_code == 200
    assert client.get("/api/v1/items/new-sku").json()["title"] == "New thing"
    with tenant_context(alpha):
        assert Item.objects.get(item_id="new-sku").is_stub is False


def test_shoppers_are_created_with_first_and_last_seen(alpha, api):
    base = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    client = api(alpha)

    _post(
        client,
        [
            event_payload(event_id="a", timestamp=(base + timedelta(hours=1)).isoformat()),
            event_payload(event_id="b", timestamp=base.isoformat()),
        ],
    )
    _post(client, [event_payload(event_id="c", timestamp=(base + timedelta(hours=2)).isoformat())])

    with tenant_context(alpha):
        shopper = Shopper.objects.get(user_id="shopper-1")
    assert (shopper.first_seen_at, shopper.last_seen_at) == (base, base + timedelta(hours=2))


def test_ingest_inside_an_outer_transaction_does_not_resend_earlier_batches(alpha):
    # The staging table is emptied by commit; a caller's outer transaction must not leak
    # batch one's rows into batch two.
    with tenant_context(alpha):
        first = events_ingest(rows=[event_payload(event_id=None)], source="seed")
        second = events_ingest(rows=[event_payload(event_id=None, user_id="s2")], source="seed")
        users = list(Event.objects.order_by("id").values_list("user_id", flat=True))

    assert (first.accepted, second.accepted) == (1, 1)
    assert users == ["shopper-1", "s2"]


def test_seeder_may_pass_aware_datetimes(alpha):
    moment = timezone.now() - timedelta(days=1)

    with tenant_context(alpha):
        result = events_ingest(rows=[event_payload(timestamp=moment)], source="seed")
        stored = Event.objects.get().timestamp

    assert result.accepted == 1
    assert stored == moment


# --- Rejected requests: nothing stored ----------------------------------------------------------
def _assert_nothing_stored(tenant):
    with tenant_context(tenant):
        assert Event.objects.count() == 0
        assert Shopper.objects.count() == 0
        assert list(Item.objects.values_list("item_id", flat=True)) == [f"{tenant.slug}-only"]


def test_body_over_10_mb_is_413(alpha, api):
    # Fewer than 10,000 events, so only the size can be refused.
    row = event_payload(item_id="x" * 1200)
    body = orjson.dumps([row] * 9_000)
    assert len(body) > 10 * 1024 * 1024

    response = _post(api(alpha), body)

    assert response.status_code == 413
    assert response.json() == {
        "error": {
            "code": "too_large",
            "message": "The request body is larger than 10 MB.",
            "fields": {},
        }
    }
    _assert_nothing_stored(alpha)


def test_declared_length_over_10_mb_is_413_before_reading(alpha, api):
    response = _post(api(alpha), b"[]", CONTENT_LENGTH=str(10 * 1024 * 1024 + 1))

    assert response.status_code == 413
    _assert_nothing_stored(alpha)


def test_more_than_10000_events_is_400(alpha, api):
    response = _post(api(alpha), [event_payload(event_id=None)] * 10_001)

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "too_many",
            "message": "At most 10,000 events per request; this one has 10,001.",
            "fields": {"events": ["At most 10000 per request."]},
        }
    }
    _assert_nothing_stored(alpha)


@pytest.mark.parametrize(
    ("body", "code", "message", "fields"),
    [
        (b'[{"user_id": ', "parse_error", None, {"body": ["Not valid JSON."]}),
        (b"", "parse_error", "The request body is empty.", {}),
        (b"[]", "invalid", "The batch is empty.", {"events": ["Must not be empty."]}),
        (
            b'{"rows": []}',
            "invalid",
            "Unknown field(s): rows.",
            {"rows": ["Unknown field."]},
        ),
        (
            b'"events"',
            "invalid",
            "Send a JSON array of events, or an object with a `events` array.",
            {"events": ["Must be a list."]},
        ),
    ],
)
def test_malformed_envelopes_are_400(alpha, api, body, code, message, fields):
    response = _post(api(alpha), body)

    error = response.json()["error"]
    assert response.status_code == 400
    assert error["code"] == code
    if message is None:
        assert error["message"].startswith("Malformed JSON: ")
    else:
        assert error["message"] == message
    assert error["fields"] == fields
    _assert_nothing_stored(alpha)


# --- Keys and isolation -------------------------------------------------------------------------
def test_without_a_key_is_401_and_nothing_stored(alpha, store_client):
    response = _post(store_client(alpha), [event_payload()])

    assert response.status_code == 401
    _assert_nothing_stored(alpha)


def test_a_key_without_ingest_scope_cannot_write_events(alpha, api):
    response = _post(api(alpha, scopes=("recommend",)), [event_payload()])

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_scope"
    _assert_nothing_stored(alpha)


def test_store_a_key_cannot_write_store_b_events(alpha, beta, api, store_client):
    alpha_client = api(alpha)
    alpha_key = alpha_client.defaults["HTTP_AUTHORIZATION"]

    response = _post(store_client(beta, HTTP_AUTHORIZATION=alpha_key), [event_payload()])
    _post(alpha_client, [event_payload(event_id="only-alpha")])

    assert response.status_code == 401
    _assert_nothing_stored(beta)
    assert [row[0] for row in _events(alpha)] == ["only-alpha"]
