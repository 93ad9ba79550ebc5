"""Shopify's mandatory privacy webhooks: customers/data_request → an export kept for the owner,
customers/redact → the shopper's erasure, shop/redact → every shopper of the store erased (the
store stays); each audited, and only in the store whose host received it."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.catalog.models import Event, Item, Shopper
from apps.connectors.mapping import guest_user_id
from apps.connectors.models import ShopperDataRequest, StoreConnection, WebhookDelivery
from apps.core.models import ShopperErasure
from tests.connectors.payloads import (
    shopify_customer_payload,
    shopify_order,
    shopify_shop_redact,
)

pytestmark = pytest.mark.django_db


def _buy(shopify_deliver, tenant, order_id, customer_id, email="bob.norman@mail.example.com"):
    response = shopify_deliver(
        tenant,
        "orders/paid",
        shopify_order(order_id, customer_id=customer_id, email=email),
        shop=f"{tenant.slug}-shop.myshopify.com",
    )
    assert response.status_code == 200, response.content


def _connect_both(alpha, beta, shopify_connect):
    shopify_connect(alpha, domain="alpha-shop.myshopify.com")
    shopify_connect(beta, domain="beta-shop.myshopify.com")


def test_a_data_request_keeps_the_shoppers_export_for_the_owner(
    alpha, beta, shopify_connect, shopify_deliver, member_client
):
    _connect_both(alpha, beta, shopify_connect)
    _buy(shopify_deliver, alpha, 1001, 191167)

    response = shopify_deliver(
        alpha,
        "customers/data_request",
        shopify_customer_payload(191167, "x@example.com", data_request_id=9999),
    )

    assert (response.status_code, response.json()["shoppers_exported"]) == (200, 1)
    with tenant_context(alpha):
        request = ShopperDataRequest.objects.get()
        actions = list(AuditEvent.objects.order_by("id").values_list("action", "actor_label"))
    assert (request.user_id, request.platform_request_id) == ("191167", "9999")
    assert [event["item_id"] for event in request.export["events"]] == ["632910392"]
    assert actions[-2:] == [
        ("shopper.exported", "shopify"),
        ("connector.data_requested", "shopify"),
    ]

    # The owner downloads it from Settings → Integrations
    client, _ = member_client(alpha, role="owner")
    download = client.get(f"/settings/integrations/data-requests/{request.pk}.json")
    assert download.status_code == 200
    assert download.json()["export"]["events"][0]["order_id"] == "1001"
    # An analyst may see the page but not download shopper data
    analyst, _ = member_client(alpha, role="analyst")
    assert analyst.get(f"/settings/integrations/data-requests/{request.pk}.json").status_code == 403


def test_customers_redact_erases_the_customer_and_their_guest_orders(
    alpha, beta, shopify_connect, shopify_deliver
):
    _connect_both(alpha, beta, shopify_connect)
    _buy(shopify_deliver, alpha, 1001, 191167)
    _buy(shopify_deliver, alpha, 1002, None, email="john@example.com")  # a guest checkout
    _buy(shopify_deliver, alpha, 1003, 555)  # someone else
    _buy(shopify_deliver, beta, 2001, 191167)  # the same customer id in another store

    response = shopify_deliver(
        alpha, "customers/redact", shopify_customer_payload(191167, "John@Example.com")
    )

    guest = guest_user_id("john@example.com", schema_name=alpha.schema_name)
    assert (response.status_code, response.json()["shoppers_erased"]) == (200, 2)
    with tenant_context(alpha):
        assert sorted(Event.objects.values_list("user_id", flat=True)) == ["555"]
        assert sorted(
            AuditEvent.objects.filter(action="shopper.erased").values_list("target_id", flat=True)
        ) == sorted(["191167", guest])
        assert AuditEvent.objects.filter(action="connector.customer_redacted").count() == 1
    assert set(
        ShopperErasure.objects.filter(schema_name=alpha.schema_name).values_list(
            "user_id", flat=True
        )
    ) == {"191167", guest}
    with tenant_context(beta):
        assert list(Event.objects.values_list("user_id", flat=True)) == ["191167"]


def test_shop_redact_erases_every_shopper_and_keeps_the_store(
    alpha, beta, shopify_connect, shopify_deliver
):
    _connect_both(alpha, beta, shopify_connect)
    _buy(shopify_deliver, alpha, 1001, 191167)
    _buy(shopify_deliver, alpha, 1003, 555)
    _buy(shopify_deliver, beta, 2001, 191167)

    response = shopify_deliver(alpha, "shop/redact", shopify_shop_redact())

    assert (response.status_code, response.json()["shoppers_erased"]) == (200, 2)
    with tenant_context(alpha):
        assert (Event.objects.count(), Shopper.objects.count()) == (0, 0)
        assert StoreConnection.objects.count() == 1
        assert Item.objects.filter(item_id="alpha-only").count() == 1
        assert list(
            AuditEvent.objects.filter(action="connector.shop_redacted").values_list(
                "details", flat=True
            )
        ) == [{"shoppers_erased": 2, "data_requests_deleted": 0}]
    with tenant_context(beta):
        assert (Event.objects.count(), Shopper.objects.count()) == (1, 1)


@pytest.mark.parametrize(
    ("topic", "data_request_id"),
    [("customers/redact", None), ("customers/data_request", 9999)],
)
def test_a_privacy_webhook_whose_customer_id_holds_a_nul_is_400_and_erases_nothing(
    alpha, beta, shopify_connect, shopify_deliver, topic, data_request_id
):
    # PostgreSQL text cannot hold NUL: looking the shopper up with it failed with a 500
    _connect_both(alpha, beta, shopify_connect)
    _buy(shopify_deliver, alpha, 1002, None, email="john@example.com")  # a guest checkout
    payload = shopify_customer_payload(1, "john@example.com", data_request_id=data_request_id)
    payload["customer"]["id"] = "191167\x00"

    response = shopify_deliver(alpha, topic, payload)

    # Then it is refused naming the field, before the guest found by the email is touched
    assert (response.status_code, response.json()["error"]["fields"]) == (
        400,
        {"customer.id": ["Must not contain NUL characters."]},
    )
    guest = guest_user_id("john@example.com", schema_name=alpha.schema_name)
    with tenant_context(alpha):
        assert list(Event.objects.values_list("user_id", flat=True)) == [guest]
        assert ShopperDataRequest.objects.count() == 0
        assert WebhookDelivery.objects.get(topic=topic).status == "failed"
    assert ShopperErasure.objects.filter(schema_name=alpha.schema_name).count() == 0
