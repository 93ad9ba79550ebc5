"""Signed order deliveries at the edges of their fields: a paid time with an offset PostgreSQL
cannot read (±15:59 at most) is stored as its UTC instant, and a line total over the events'
value bound is refused naming the line's `value`, with nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.utils import timezone as django_timezone
from django_tenants.utils import tenant_context

from apps.catalog.models import Event
from apps.connectors import mapping
from tests.connectors.id_rule import assert_nothing_stored
from tests.connectors.payloads import shopify_order, woo_order

pytestmark = pytest.mark.django_db

OFFSETS = [
    timedelta(hours=16),
    -timedelta(hours=23, minutes=59),
    timedelta(hours=5, minutes=30, seconds=15, microseconds=123456),
]
OFFSET_IDS = ["+16:00", "-23:59", "+05:30:15.123456"]


def _purchase_times(tenant) -> set[datetime]:
    with tenant_context(tenant):
        return set(Event.objects.filter(type="purchase").values_list("timestamp", flat=True))


def _instant() -> datetime:
    return django_timezone.now().replace(microsecond=500000) - timedelta(days=1)


@pytest.mark.parametrize("offset", OFFSETS, ids=OFFSET_IDS)
def test_a_woocommerce_paid_time_with_any_offset_is_stored_in_utc(
    alpha, woo_connect, woo_deliver, offset
):
    secret = woo_connect(alpha)
    instant = _instant()
    order = woo_order(727)
    order["date_paid_gmt"] = instant.astimezone(timezone(offset)).isoformat()

    response = woo_deliver(alpha, "order.created", order, secret=secret)

    assert (response.status_code, response.json()["purchases"]) == (200, 2)
    assert _purchase_times(alpha) == {instant}


@pytest.mark.parametrize("offset", OFFSETS, ids=OFFSET_IDS)
def test_a_shopify_processed_time_with_any_offset_is_stored_in_utc(
    alpha, shopify_connect, shopify_deliver, offset
):
    shopify_connect(alpha)
    instant = _instant()
    order = shopify_order(450789469)
    order["processed_at"] = instant.astimezone(timezone(offset)).isoformat()

    response = shopify_deliver(alpha, "orders/paid", order)

    assert (response.status_code, response.json()["purchases"]) == (200, 1)
    assert _purchase_times(alpha) == {instant}


def test_the_mapping_gives_utc_and_leaves_unmovable_times_to_validation():
    now = datetime(2026, 12, 2, tzinfo=UTC)
    order = shopify_order(450789469)
    order["processed_at"] = "2026-12-01T12:00:00+16:00"
    unmovable = woo_order(727)
    # Year 1 at +16:00 is before datetime.min in UTC: kept as sent, for validation to refuse
    unmovable["date_paid_gmt"] = "0001-01-01T00:00:00+16:00"

    paid = mapping.shopify_order_lines(order, schema_name="alpha", now=now).purchases
    kept = mapping.woo_order_lines(unmovable, schema_name="alpha", now=now).purchases

    assert paid[0]["timestamp"] == datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
    assert paid[0]["timestamp"].tzinfo is UTC
    assert {line["timestamp"] for line in kept} == {
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=16)))
    }


def test_a_paid_time_before_the_first_year_in_utc_is_400_naming_the_timestamp(
    alpha, woo_connect, woo_deliver
):
    secret = woo_connect(alpha)
    order = woo_order(727)
    order["date_paid_gmt"] = "0001-01-01T00:00:00+16:00"

    response = woo_deliver(alpha, "order.created", order, secret=secret)

    assert (response.status_code, response.json()["error"]["fields"]) == (
        400,
        {"line.timestamp": ["Must not be more than 3 years in the past."]},
    )
    assert_nothing_stored(alpha)


def test_a_line_total_over_the_value_bound_is_400_naming_the_value(alpha, woo_connect, woo_deliver):
    secret = woo_connect(alpha)
    order = woo_order(727, lines=[(794, 1, "43.98"), (93, 1, "1000000000000000000000000000.00")])

    response = woo_deliver(alpha, "order.created", order, secret=secret)

    assert (response.status_code, response.json()["error"]["fields"]) == (
        400,
        {"line.value": ["A quantity must be at most 1e12."]},
    )
    assert_nothing_stored(alpha)
