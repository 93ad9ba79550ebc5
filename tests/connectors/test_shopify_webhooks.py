"""Shopify webhooks on a store's host: products, paid / updated / cancelled orders and refunds
mapped onto items and events, idempotency by X-Shopify-Webhook-Id, and the refusals."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from apps.catalog.models import Event, Item
from apps.connectors.models import StoreConnection, WebhookDelivery
from tests.connectors.id_rule import NUL, PRINTABLE, TOO_LONG, assert_nothing_stored
from tests.connectors.payloads import shopify_order, shopify_product, shopify_refund

pytestmark = pytest.mark.django_db


def _order_events(tenant):
    with tenant_context(tenant):
        return sorted(
            Event.objects.filter(type__in=["purchase", "refund"]).values_list(
                "type", "user_id", "item_id", "order_id", "value"
            )
        )


def test_a_product_maps_onto_an_item_and_leaves_when_archived_or_deleted(
    alpha, shopify_connect, shopify_deliver
):
    shopify_connect(alpha)

    created = shopify_deliver(alpha, "products/create", shopify_product(632910392))

    assert (created.status_code, created.json()["items_created"]) == (200, 1)
    with tenant_context(alpha):
        item = Item.objects.get(item_id="632910392")
    assert (item.title, item.categories, item.price, item.in_stock) == (
        "IPod Nano - 8GB",
        ["Cult Products", "Emotive", "Flash Memory", "MP3", "Music"],
        Decimal("189.00"),
        True,
    )
    assert item.description == "It's the small iPod with one very big idea: Video."
    assert item.attributes == {
        "source": "shopify",
        "url": "https://alpha-shop.myshopify.com/products/ipod-nano",
        "image_url": "https://cdn.shopify.com/s/files/1/0005/4838/0009/products/ipod-nano.png",
        "vendor": "Apple",
    }

    # Sold out everywhere (tracked, no backorders): out of stock
    sold_out = shopify_product(632910392)
    for variant in sold_out["variants"]:
        variant.update(inventory_quantity=0, inventory_policy="deny")
    shopify_deliver(alpha, "products/update", sold_out)
    with tenant_context(alpha):
        assert Item.objects.get(item_id="632910392").in_stock is False

    # Archived: hidden; deleted (id only) once hidden: nothing more to remove
    archived = shopify_deliver(
        alpha, "products/update", shopify_product(632910392, status="archived")
    )
    deleted = shopify_deliver(alpha, "products/delete", {"id": 632910392})

    assert (archived.json()["items_removed"], deleted.json()["items_removed"]) == (1, 0)
    with tenant_context(alpha):
        assert Item.objects.get(item_id="632910392").is_hidden is True


def test_a_paid_order_is_one_purchase_per_line_however_often_reported(
    alpha, shopify_connect, shopify_deliver
):
    shopify_connect(alpha)
    lines = [(1, 632910392, 2, "199.00"), (2, 921728736, 1, "25.00")]

    # An order created unpaid brings nothing; paid, it brings its lines; updated again, nothing
    pending = shopify_deliver(
        alpha, "orders/create", shopify_order(450789469, financial_status="pending", lines=lines)
    )
    paid = shopify_deliver(alpha, "orders/paid", shopify_order(450789469, lines=lines))
    updated = shopify_deliver(alpha, "orders/updated", shopify_order(450789469, lines=lines))

    assert pending.json()["purchases"] == 0
    assert (paid.json()["purchases"], updated.json()["purchases"]) == (2, 0)
    assert _order_events(alpha) == [
        ("purchase", "207119551", "632910392", "450789469", 398.0),
        ("purchase", "207119551", "921728736", "450789469", 25.0),
    ]


def test_a_refund_and_a_cancellation_become_refund_events_of_the_buyer(
    alpha, shopify_connect, shopify_deliver
):
    shopify_connect(alpha)
    lines = [(466157049, 632910392, 1, "199.00"), (2, 921728736, 1, "25.00")]
    shopify_deliver(alpha, "orders/paid", shopify_order(450789469, lines=lines))

    # A refund of one line names the order and the line, not the shopper
    refunded = shopify_deliver(alpha, "refunds/create", shopify_refund(order_id=450789469))
    # Then the order is cancelled: every line is undone (the refunded one once)
    cancelled = shopify_deliver(
        alpha,
        "orders/cancelled",
        shopify_order(450789469, lines=lines, cancelled=True, financial_status="refunded"),
    )

    assert (refunded.json()["refunds"], cancelled.json()["refunds"]) == (1, 1)
    assert _order_events(alpha) == [
        ("purchase", "207119551", "632910392", "450789469", 199.0),
        ("purchase", "207119551", "921728736", "450789469", 25.0),
        ("refund", "207119551", "632910392", "450789469", None),
        ("refund", "207119551", "921728736", "450789469", None),
    ]


def test_a_redelivery_with_the_same_webhook_id_is_answered_without_processing(
    alpha, shopify_connect, shopify_deliver
):
    shopify_connect(alpha)
    webhook_id = "b54557e4-bdd9-4b37-8a5f-94b3c34e1ab2"

    shopify_deliver(alpha, "products/create", shopify_product(), webhook_id=webhook_id)
    again = shopify_deliver(alpha, "products/create", shopify_product(), webhook_id=webhook_id)

    assert again.json() == {"received": True, "duplicate": True}
    with tenant_context(alpha):
        assert WebhookDelivery.objects.count() == 1


def test_a_failed_delivery_is_processed_when_shopify_retries_it(
    alpha, shopify_connect, shopify_deliver
):
    shopify_connect(alpha)
    webhook_id = "b54557e4-bdd9-4b37-8a5f-000000000001"

    failed = shopify_deliver(
        alpha, "products/create", shopify_product(id=None), webhook_id=webhook_id
    )
    retried = shopify_deliver(alpha, "products/create", shopify_product(), webhook_id=webhook_id)

    assert (failed.status_code, retried.status_code) == (400, 200)
    with tenant_context(alpha):
        assert list(WebhookDelivery.objects.values_list("status", "attempts", "error")) == [
            ("processed", 2, "")
        ]
        assert Item.objects.filter(item_id="632910392").count() == 1


def test_a_delivery_from_another_shop_is_403(alpha, shopify_connect, shopify_deliver):
    shopify_connect(alpha)

    response = shopify_deliver(
        alpha, "products/create", shopify_product(), shop="someone-else.myshopify.com"
    )

    assert (response.status_code, response.json()["error"]["code"]) == (403, "wrong_shop")
    with tenant_context(alpha):
        assert (
            Item.objects.filter(item_id="632910392").count(),
            WebhookDelivery.objects.count(),
        ) == (
            0,
            0,
        )


def test_a_delivery_signed_for_store_a_is_refused_on_store_bs_host(
    alpha, beta, shopify_connect, shopify_deliver
):
    shopify_connect(alpha)
    shopify_connect(beta, domain="beta-shop.myshopify.com", secret="shpss_" + "b" * 32)

    response = shopify_deliver(
        beta, "products/create", shopify_product(), shop="beta-shop.myshopify.com"
    )

    assert (response.status_code, response.json()["error"]["code"]) == (401, "bad_signature")
    with tenant_context(beta):
        assert Item.objects.filter(item_id="632910392").count() == 0


def test_a_store_without_shopify_answers_404(beta, shopify_deliver):
    response = shopify_deliver(beta, "products/create", shopify_product())

    assert (response.status_code, response.json()["error"]) == (
        404,
        {
            "code": "not_connected",
            "message": "Shopify is not connected to this store.",
            "fields": {},
        },
    )


def test_a_body_that_is_not_an_object_is_400(alpha, shopify_connect, shopify_deliver):
    shopify_connect(alpha)

    response = shopify_deliver(alpha, "products/create", None, body=b"[1, 2]")

    assert (response.status_code, response.json()["error"]["fields"]) == (
        400,
        {"body": ["Must be a JSON object."]},
    )


def test_the_secret_is_stored_encrypted_and_never_in_the_log(alpha, shopify_connect):
    from django.db import connection

    secret = shopify_connect(alpha)

    with tenant_context(alpha), connection.cursor() as cursor:
        cursor.execute("SELECT webhook_secret FROM connectors_storeconnection")
        (stored,) = cursor.fetchone()
        assert StoreConnection.objects.get().webhook_secret == secret
    assert secret not in stored
    assert stored.startswith("gAAAAA")


# --- ids breaking the id rule ---------------------------------------------------------------------
# What a refused delivery must leave behind: tests/connectors/id_rule.py.


@pytest.mark.parametrize(
    ("topic", "payload", "field", "message"),
    [
        ("products/create", shopify_product(id="gid://shopify/Product/1\x00"), "id", NUL),
        (
            "products/create",
            shopify_product(id="gid://shopify/Product/1\x1b"),
            "item_id",
            PRINTABLE,
        ),
        ("products/create", shopify_product(id="gid://" + "x" * 123), "item_id", TOO_LONG),
        ("products/delete", {"id": "gid://shopify/Product/1\x00"}, "id", NUL),
        ("orders/paid", shopify_order(customer_id="a\x00b"), "customer.id", NUL),
        ("orders/paid", shopify_order(customer_id="a\x07b"), "line.user_id", PRINTABLE),
        ("orders/paid", shopify_order(customer_id="x" * 129), "line.user_id", TOO_LONG),
        ("orders/paid", shopify_order(order_id="a\x00b"), "id", NUL),
        ("orders/paid", shopify_order(order_id="x" * 129), "line.order_id", TOO_LONG),
        ("refunds/create", {**shopify_refund(), "order_id": "a\x00b"}, "order_id", NUL),
    ],
)
def test_a_delivery_whose_id_breaks_the_id_rule_is_400_naming_the_field_and_stores_nothing(
    alpha, shopify_connect, shopify_deliver, topic, payload, field, message
):
    shopify_connect(alpha)

    response = shopify_deliver(alpha, topic, payload)

    assert (response.status_code, response.json()["error"]["fields"]) == (400, {field: [message]})
    assert_nothing_stored(alpha)
