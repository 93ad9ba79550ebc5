"""WooCommerce webhooks on a store's host: the creation ping, signed product and order
deliveries mapped onto items and purchase / refund events, idempotency, and every refusal
(unsigned, wrong secret, another store's secret, malformed body) with nothing written."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from apps.billing.selectors import usage_month_to_date
from apps.catalog.models import Event, Item
from apps.connectors.mapping import guest_user_id
from apps.connectors.models import WebhookDelivery
from tests.connectors.conftest import sign
from tests.connectors.id_rule import NUL, PRINTABLE, TOO_LONG, assert_nothing_stored
from tests.connectors.payloads import woo_order, woo_product

pytestmark = pytest.mark.django_db


def _purchases(tenant):
    with tenant_context(tenant):
        return sorted(
            Event.objects.filter(type__in=["purchase", "refund"]).values_list(
                "type", "user_id", "item_id", "order_id", "value"
            )
        )


def test_the_creation_ping_is_answered_200_and_changes_nothing(alpha, woo_connect, store_client):
    # Given a store connected to WooCommerce
    woo_connect(alpha)

    # When WooCommerce pings the delivery URL as it does when a webhook is saved (unsigned form
    # body)
    response = store_client(alpha).post(
        "/api/v1/connectors/woocommerce/webhook",
        data=b"webhook_id=12",
        content_type="application/x-www-form-urlencoded",
    )

    # Then it is answered 200, and nothing is recorded
    assert (response.status_code, response.json()) == (200, {"received": True, "ping": True})
    with tenant_context(alpha):
        assert WebhookDelivery.objects.count() == 0


def test_a_ping_to_a_store_without_woocommerce_is_404(beta, store_client):
    response = store_client(beta).post(
        "/api/v1/connectors/woocommerce/webhook",
        data=b"webhook_id=12",
        content_type="application/x-www-form-urlencoded",
    )

    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_connected")


def test_product_created_updated_and_deleted_map_onto_the_item(alpha, woo_connect, woo_deliver):
    secret = woo_connect(alpha)

    # When a product is created
    created = woo_deliver(alpha, "product.created", woo_product(794), secret=secret)

    # Then the item holds its name, categories, price, stock status, image and permalink
    assert (created.status_code, created.json()["items_created"]) == (200, 1)
    with tenant_context(alpha):
        item = Item.objects.get(item_id="794")
    assert (item.title, item.categories, item.price, item.in_stock, item.is_hidden) == (
        "Premium Quality",
        ["Clothing", "T-shirts"],
        Decimal("21.99"),
        True,
        False,
    )
    assert item.description == "Pellentesque habitant morbi tristique."
    assert item.attributes == {
        "source": "woocommerce",
        "url": "https://shop.example/product/premium-quality-794/",
        "image_url": "https://shop.example/wp-content/uploads/2017/03/T_2_front-4.jpg",
        "sku": "PQ-794",
    }

    # When it sells out, then is deleted (WooCommerce sends only the id)
    woo_deliver(
        alpha,
        "product.updated",
        woo_product(794, stock_status="outofstock", price="19.50"),
        secret=secret,
    )
    with tenant_context(alpha):
        after_update = Item.objects.values_list("in_stock", "price").get(item_id="794")
    deleted = woo_deliver(alpha, "product.deleted", {"id": 794}, secret=secret)

    # Then the item went out of stock at the new price, and is now hidden (history kept)
    assert after_update == (False, Decimal("19.50"))
    assert (deleted.status_code, deleted.json()["items_removed"]) == (200, 1)
    with tenant_context(alpha):
        assert Item.objects.values_list("is_hidden", flat=True).get(item_id="794") is True


def test_an_order_becomes_purchases_once_it_reaches_processing(alpha, woo_connect, woo_deliver):
    secret = woo_connect(alpha)

    # Given an order created pending payment: nothing is bought yet
    pending = woo_deliver(alpha, "order.created", woo_order(727, status="pending"), secret=secret)
    assert (pending.status_code, _purchases(alpha)) == (200, [])

    # When it reaches processing, then completed (WooCommerce sends order.updated each time)
    woo_deliver(alpha, "order.updated", woo_order(727, status="processing"), secret=secret)
    completed = woo_deliver(
        alpha, "order.updated", woo_order(727, status="completed"), secret=secret
    )

    # Then each line is one purchase of the customer, with the order id and the line total,
    # counted once although reported twice
    assert completed.json()["purchases"] == 0
    assert completed.json()["duplicates"] == 2
    assert _purchases(alpha) == [
        ("purchase", "25", "794", "727", 43.98),
        ("purchase", "25", "93", "727", 9.0),
    ]


def test_two_variations_of_one_product_in_an_order_are_one_purchase_with_their_total(
    alpha, woo_connect, woo_deliver
):
    secret = woo_connect(alpha)

    woo_deliver(
        alpha,
        "order.created",
        woo_order(728, lines=[(794, 1, "20.00"), (794, 2, "44.00")]),
        secret=secret,
    )

    assert _purchases(alpha) == [("purchase", "25", "794", "728", 64.0)]


def test_a_guest_order_is_keyed_by_a_hash_of_the_billing_email(alpha, woo_connect, woo_deliver):
    secret = woo_connect(alpha)

    woo_deliver(
        alpha,
        "order.created",
        woo_order(729, customer_id=0, email="Guest.Buyer@Example.com ", lines=[(93, 1, "9.00")]),
        secret=secret,
    )

    expected = guest_user_id("guest.buyer@example.com", schema_name=alpha.schema_name)
    assert _purchases(alpha) == [("purchase", expected, "93", "729", 9.0)]
    assert expected.startswith("guest-")
    assert "example" not in expected
    # the same address is another shopper in another store
    assert guest_user_id("guest.buyer@example.com", schema_name="beta") != expected


def test_a_cancelled_order_turns_its_purchases_into_refunds(alpha, woo_connect, woo_deliver):
    secret = woo_connect(alpha)
    woo_deliver(alpha, "order.updated", woo_order(730, status="processing"), secret=secret)

    cancelled = woo_deliver(
        alpha, "order.updated", woo_order(730, status="cancelled"), secret=secret
    )

    assert cancelled.json()["refunds"] == 2
    assert _purchases(alpha) == [
        ("purchase", "25", "794", "730", 43.98),
        ("purchase", "25", "93", "730", 9.0),
        ("refund", "25", "794", "730", None),
        ("refund", "25", "93", "730", None),
    ]


def test_a_delivery_received_twice_is_processed_once(alpha, woo_connect, woo_deliver):
    secret = woo_connect(alpha)
    body = woo_product(794)

    first = woo_deliver(alpha, "product.created", body, secret=secret, delivery_id="d" * 32)
    again = woo_deliver(alpha, "product.created", body, secret=secret, delivery_id="d" * 32)

    assert first.json()["duplicate"] is False
    assert (again.status_code, again.json()) == (200, {"received": True, "duplicate": True})
    with tenant_context(alpha):
        assert list(WebhookDelivery.objects.values_list("topic", "status", "attempts")) == [
            ("product.created", "processed", 1)
        ]


def test_two_deliveries_sharing_woocommerces_per_second_id_are_both_processed(
    alpha, woo_connect, woo_deliver
):
    # WooCommerce's delivery id hashes the webhook id and the current second only
    secret = woo_connect(alpha)

    woo_deliver(alpha, "product.created", woo_product(1), secret=secret, delivery_id="e" * 32)
    woo_deliver(alpha, "product.created", woo_product(2), secret=secret, delivery_id="e" * 32)

    with tenant_context(alpha):
        assert sorted(
            Item.objects.filter(item_id__in=["1", "2"]).values_list("item_id", flat=True)
        ) == [
            "1",
            "2",
        ]


@pytest.mark.parametrize(
    ("signature", "code", "message"),
    [
        ("", "unsigned", "The signature header is missing."),
        (
            "bm90IHRoZSBzaWduYXR1cmU=",
            "bad_signature",
            "The signature does not match this store's secret.",
        ),
    ],
)
def test_an_unsigned_or_wrongly_signed_delivery_is_401_and_writes_nothing(
    alpha, woo_connect, woo_deliver, signature, code, message
):
    secret = woo_connect(alpha)

    response = woo_deliver(
        alpha, "product.created", woo_product(794), secret=secret, signature=signature
    )

    assert (response.status_code, response.json()) == (
        401,
        {
            "error": {
                "code": code,
                "message": message,
                "fields": {"X-WC-Webhook-Signature": [message]},
            }
        },
    )
    with tenant_context(alpha):
        assert (Item.objects.filter(item_id="794").count(), WebhookDelivery.objects.count()) == (
            0,
            0,
        )


def test_a_body_changed_after_signing_is_refused(alpha, woo_connect, woo_deliver):
    secret = woo_connect(alpha)
    signed = json.dumps(woo_product(794)).encode()

    response = woo_deliver(
        alpha,
        "product.created",
        None,
        secret=secret,
        body=signed.replace(b"21.99", b"0.01"),
        signature=sign(secret, signed),
    )

    assert (response.status_code, response.json()["error"]["code"]) == (401, "bad_signature")
    with tenant_context(alpha):
        assert Item.objects.filter(item_id="794").count() == 0


def test_a_delivery_signed_with_another_stores_secret_is_refused(
    alpha, beta, woo_connect, woo_deliver
):
    # Given two stores connected to WooCommerce, each with its own secret
    alpha_secret = woo_connect(alpha)
    woo_connect(beta)

    # When a delivery signed with alpha's secret is posted to beta's host
    response = woo_deliver(beta, "product.created", woo_product(794), secret=alpha_secret)

    # Then beta refuses it, and neither store stored anything
    assert (response.status_code, response.json()["error"]["code"]) == (401, "bad_signature")
    for tenant in (alpha, beta):
        with tenant_context(tenant):
            assert (
                Item.objects.filter(item_id="794").count(),
                WebhookDelivery.objects.count(),
            ) == (
                0,
                0,
            )


def test_a_signed_but_malformed_body_is_400_naming_the_body_and_logged(
    alpha, woo_connect, woo_deliver
):
    secret = woo_connect(alpha)

    response = woo_deliver(alpha, "product.created", None, secret=secret, body=b'{"id": 794,')

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert list(response.json()["error"]["fields"]) == ["body"]
    with tenant_context(alpha):
        assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["failed"]
        assert Item.objects.filter(item_id="794").count() == 0


def test_a_product_without_an_id_is_400_naming_id(alpha, woo_connect, woo_deliver):
    secret = woo_connect(alpha)

    response = woo_deliver(alpha, "product.created", woo_product(794, id=None), secret=secret)

    assert (response.status_code, response.json()["error"]["fields"]) == (
        400,
        {"id": ["Must be a positive integer or a non-blank string."]},
    )
    with tenant_context(alpha):
        assert WebhookDelivery.objects.get().error.startswith("Invalid input in: id.")


def test_a_topic_shelfsense_does_not_use_is_acknowledged_and_logged_ignored(
    alpha, woo_connect, woo_deliver
):
    secret = woo_connect(alpha)

    response = woo_deliver(alpha, "coupon.created", {"id": 5, "code": "SAVE10"}, secret=secret)

    assert (response.status_code, response.json()["status"]) == (200, "ignored")


# --- ids breaking the id rule ---------------------------------------------------------------------
# What a refused delivery must leave behind: tests/connectors/id_rule.py.


@pytest.mark.parametrize(
    ("topic", "product_id", "field", "message"),
    [
        ("product.created", "a\x00b", "id", NUL),
        ("product.created", "a\x07b", "item_id", PRINTABLE),
        ("product.created", "x" * 129, "item_id", TOO_LONG),
        ("product.deleted", "a\x00b", "id", NUL),
    ],
)
def test_a_product_whose_id_breaks_the_id_rule_is_400_naming_the_field_and_stores_nothing(
    alpha, woo_connect, woo_deliver, topic, product_id, field, message
):
    secret = woo_connect(alpha)

    response = woo_deliver(alpha, topic, woo_product(794, id=product_id), secret=secret)

    assert (response.status_code, response.json()["error"]["fields"]) == (400, {field: [message]})
    assert_nothing_stored(alpha)


@pytest.mark.parametrize(
    ("order_id", "product_id", "field", "message"),
    [
        ("a\x00b", 93, "id", NUL),
        ("a\x07b", 93, "line.order_id", PRINTABLE),
        ("x" * 129, 93, "line.order_id", TOO_LONG),
        (727, "a\x07b", "line.item_id", PRINTABLE),
        (727, "x" * 129, "line.item_id", TOO_LONG),
    ],
)
def test_an_order_with_an_id_breaking_the_id_rule_is_400_and_not_even_its_valid_lines_count(
    alpha, woo_connect, woo_deliver, order_id, product_id, field, message
):
    # Given an order whose first line is valid and whose order id or second product id is not
    secret = woo_connect(alpha)
    order = woo_order(727)
    order["id"] = order_id
    order["line_items"][1]["product_id"] = product_id

    response = woo_deliver(alpha, "order.created", order, secret=secret)

    # Then the delivery is refused naming the field; the valid line is neither stored nor
    # counted against the month's quota (that counter lives outside the transaction)
    assert (response.status_code, response.json()["error"]["fields"]) == (400, {field: [message]})
    assert_nothing_stored(alpha)
    assert usage_month_to_date(alpha)["events_ingested"] == 0
