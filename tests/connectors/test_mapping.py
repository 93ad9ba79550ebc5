"""The payload mapping on its own (no database): ids, dates, lines and states."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.connectors import mapping
from tests.connectors.payloads import shopify_order, shopify_product, woo_order, woo_product

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_a_graphql_gid_is_a_valid_item_id():
    row = mapping.shopify_item_row(
        shopify_product(id="gid://shopify/Product/632910392"), shop_domain="s.myshopify.com"
    )

    assert row["item_id"] == "gid://shopify/Product/632910392"


@pytest.mark.parametrize("bad", [None, 0, -3, "  ", 1.5, True, ["1"]])
def test_an_id_that_is_not_a_positive_integer_nor_a_string_is_named(bad):
    with pytest.raises(mapping.PayloadError) as raised:
        mapping.woo_item_row(woo_product(id=bad))

    assert (raised.value.field, raised.value.message) == (
        "id",
        "Must be a positive integer or a non-blank string.",
    )


def test_woocommerce_gmt_dates_without_a_zone_are_read_as_utc():
    order = woo_order(1, status="completed")
    order["date_paid_gmt"] = "2026-11-30T09:15:00"

    lines = mapping.woo_order_lines(order, schema_name="alpha", now=NOW)

    assert {event["timestamp"] for event in lines.purchases} == {
        datetime(2026, 11, 30, 9, 15, tzinfo=UTC)
    }


def test_lines_of_deleted_products_and_free_lines_bring_no_value_or_no_purchase():
    order = woo_order(1, lines=[(0, 1, "5.00"), (794, 1, "0.00")])

    lines = mapping.woo_order_lines(order, schema_name="alpha", now=NOW)

    assert [(e["item_id"], e.get("value")) for e in lines.purchases] == [("794", None)]


@pytest.mark.parametrize("status", ["pending", "on-hold", "failed", "checkout-draft"])
def test_unpaid_woocommerce_states_bring_nothing(status):
    assert (
        mapping.woo_order_lines(woo_order(1, status=status), schema_name="a", now=NOW).events == []
    )


def test_a_shopify_line_refunded_in_the_order_payload_is_a_refund():
    refunds = [
        {
            "id": 1,
            "refund_line_items": [
                {"line_item_id": 2, "quantity": 1, "line_item": {"id": 2, "product_id": 921728736}}
            ],
        }
    ]
    order = shopify_order(
        5,
        financial_status="partially_refunded",
        lines=[(1, 632910392, 1, "199.00"), (2, 921728736, 2, "25.00")],
        refunds=refunds,
    )

    lines = mapping.shopify_order_lines(order, schema_name="alpha", now=NOW)

    assert [(e["type"], e["item_id"], e.get("value")) for e in lines.events] == [
        ("purchase", "632910392", 199.0),
        ("purchase", "921728736", 50.0),
        ("refund", "921728736", None),
    ]


def test_an_order_without_customer_nor_email_is_named():
    order = shopify_order(5, customer_id=None, email="")

    with pytest.raises(mapping.PayloadError) as raised:
        mapping.shopify_order_lines(order, schema_name="alpha", now=NOW)

    assert raised.value.field == "customer"
