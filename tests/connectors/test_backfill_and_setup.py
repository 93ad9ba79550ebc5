"""Backfills against local fake shops over real HTTP (WooCommerce REST v3 pages counted by
X-WP-TotalPages, Shopify Admin REST pages linked by `Link`), and the setup: `connect_store`,
Settings → Integrations."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.catalog.models import Event, Item
from apps.connectors import clients
from apps.connectors.models import StoreConnection
from tests.connectors.conftest import sign
from tests.connectors.fake_shops import (
    SHOPIFY_TOKEN,
    WOO_KEY,
    WOO_SECRET,
    FakeShopify,
    FakeWooCommerce,
)
from tests.connectors.payloads import shopify_order, shopify_product, woo_order, woo_product

pytestmark = pytest.mark.django_db


@pytest.fixture
def woo_shop():
    shop = FakeWooCommerce()
    shop.start()
    yield shop
    shop.stop()


@pytest.fixture
def shopify_shop():
    shop = FakeShopify()
    shop.start()
    yield shop
    shop.stop()


def _backfill(*args, env=None, monkeypatch=None):
    out, err = io.StringIO(), io.StringIO()
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    call_command("connector_backfill", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_woocommerce_backfill_reads_every_page_and_a_rerun_stores_nothing_twice(
    alpha, beta, woo_shop, monkeypatch
):
    # Given a shop with 205 products (3 pages of 100) and orders in every state
    monkeypatch.setattr(clients, "WOO_PAGE_SIZE", 100)
    woo_shop.state.products = [woo_product(1000 + n) for n in range(205)]
    woo_shop.state.products[3]["status"] = "draft"
    woo_shop.state.orders = [
        woo_order(1, status="completed", lines=[(1000, 1, "21.99")]),
        woo_order(2, status="processing", customer_id=0, lines=[(1001, 2, "43.98")]),
        woo_order(3, status="pending", lines=[(1002, 1, "21.99")]),
        woo_order(4, status="refunded", lines=[(1004, 1, "21.99")]),
    ]
    env = {"WOOCOMMERCE_CONSUMER_KEY": WOO_KEY, "WOOCOMMERCE_CONSUMER_SECRET": WOO_SECRET}
    args = ("--tenant", "alpha", "--platform", "woocommerce", "--site-url", woo_shop.url)

    # When the backfill runs, twice
    first, _ = _backfill(*args, env=env, monkeypatch=monkeypatch)
    second, _ = _backfill(*args, env=env, monkeypatch=monkeypatch)

    # Then progress was printed per page, every published product is an item, paid orders are
    # purchases, the refunded order a refund, and the re-run added nothing
    assert first.splitlines() == [
        "products: page 1/3 (100 read)",
        "products: page 2/3 (100 read)",
        "products: page 3/3 (5 read)",
        "orders: page 1/1 (3 read)",
        "Items: 204 created, 0 updated. Orders: 3 read, 2 purchases and 1 refunds stored, "
        "0 already stored. Errors: 0.",
    ]
    assert second.splitlines()[-1] == (
        "Items: 0 created, 204 updated. Orders: 3 read, 0 purchases and 0 refunds stored, "
        "3 already stored. Errors: 0."
    )
    assert ("/wp-json/wc/v3/orders", "processing,completed,refunded") in [
        (path, query.get("status", [""])[0]) for path, query in woo_shop.state.requests
    ]
    with tenant_context(alpha):
        assert Item.objects.filter(item_id__startswith="1").count() == 204
        assert sorted(Event.objects.values_list("type", "order_id", "item_id")) == [
            ("purchase", "1", "1000"),
            ("purchase", "2", "1001"),
            ("refund", "4", "1004"),
        ]
    with tenant_context(beta):
        assert Item.objects.filter(item_id__startswith="1").count() == 0


def test_woocommerce_backfill_with_wrong_credentials_fails_with_the_shops_answer(
    alpha, woo_shop, monkeypatch
):
    env = {"WOOCOMMERCE_CONSUMER_KEY": WOO_KEY, "WOOCOMMERCE_CONSUMER_SECRET": "cs_wrong"}

    with pytest.raises(
        CommandError, match=re.escape("The shop answered 401 to /wp-json/wc/v3/products.")
    ):
        _backfill(
            "--tenant", "alpha", "--platform", "woocommerce", "--site-url", woo_shop.url,
            env=env, monkeypatch=monkeypatch,
        )  # fmt: skip
    with tenant_context(alpha):
        assert Item.objects.count() == 1  # the fixture's own item only


def test_a_plain_http_shop_off_this_machine_is_refused(alpha, monkeypatch):
    env = {"WOOCOMMERCE_CONSUMER_KEY": WOO_KEY, "WOOCOMMERCE_CONSUMER_SECRET": WOO_SECRET}

    with pytest.raises(CommandError, match=r"Must use https\. site_url: Must use https"):
        _backfill(
            "--tenant", "alpha", "--platform", "woocommerce", "--site-url", "http://shop.example",
            env=env, monkeypatch=monkeypatch,
        )  # fmt: skip


def test_shopify_backfill_follows_the_link_header(alpha, shopify_shop, monkeypatch):
    monkeypatch.setattr(clients, "SHOPIFY_PAGE_SIZE", 2)
    shopify_shop.state.products = [shopify_product(7000 + n) for n in range(5)]
    shopify_shop.state.orders = [
        shopify_order(1, lines=[(11, 7000, 1, "10.00")]),
        shopify_order(2, financial_status="pending", lines=[(21, 7001, 1, "10.00")]),
        shopify_order(
            3, customer_id=None, email="guest@example.com", lines=[(31, 7002, 3, "10.00")]
        ),
    ]

    out, _ = _backfill(
        "--tenant", "alpha", "--platform", "shopify", "--shop-domain", "alpha-shop.myshopify.com",
        "--shop-url", shopify_shop.url,
        env={"SHOPIFY_ACCESS_TOKEN": SHOPIFY_TOKEN}, monkeypatch=monkeypatch,
    )  # fmt: skip

    assert out.splitlines() == [
        "products: page 1 (2 read)",
        "products: page 2 (2 read)",
        "products: page 3 (1 read)",
        "orders: page 1 (2 read)",
        "orders: page 2 (1 read)",
        "Items: 5 created, 0 updated. Orders: 3 read, 2 purchases and 0 refunds stored, "
        "0 already stored. Errors: 0.",
    ]
    # the cursor pages carry only limit and page_info, as Shopify requires
    assert [sorted(query) for _, query in shopify_shop.state.requests] == [
        ["limit"],
        ["limit", "page_info"],
        ["limit", "page_info"],
        ["limit", "status"],
        ["limit", "page_info"],
    ]
    with tenant_context(alpha):
        assert sorted(Event.objects.values_list("order_id", "item_id", "value")) == [
            ("1", "7000", 10.0),
            ("3", "7002", 30.0),
        ]


def test_connect_store_prints_the_url_and_the_woocommerce_secret_once(alpha, woo_deliver):
    out = io.StringIO()

    call_command("connect_store", "--tenant", "alpha", "--platform", "woocommerce", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == "Connected WooCommerce to alpha."
    assert re.fullmatch(
        r"Webhook URL: https?://alpha\.[^/]+/api/v1/connectors/woocommerce/webhook", lines[1]
    )
    secret = lines[2].removeprefix("Secret (shown once): ")
    assert len(secret) == 43
    # the printed secret verifies deliveries to this store
    response = woo_deliver(alpha, "product.created", woo_product(794), secret=secret)
    assert response.status_code == 200
    with tenant_context(alpha):
        assert list(
            AuditEvent.objects.filter(action__startswith="connector.")
            .order_by("id")
            .values_list("action", "actor_label")
        ) == [
            ("connector.connected", "command:connect_store"),
            ("connector.secret_set", "command:connect_store"),
        ]
        assert secret not in str(list(AuditEvent.objects.values_list("details", flat=True)))


def test_connect_store_for_shopify_refuses_a_bad_domain_and_stores_nothing(alpha):
    with pytest.raises(
        CommandError, match=re.escape("--shop-domain: The shop's myshopify.com domain")
    ):
        call_command(
            "connect_store", "--tenant", "alpha", "--platform", "shopify",
            "--shop-domain", "my shop", "--api-secret", "shpss_" + "a" * 32,
            stdout=io.StringIO(),
        )  # fmt: skip
    with tenant_context(alpha):
        assert StoreConnection.objects.count() == 0


def test_integrations_page_generates_the_woocommerce_secret_once_and_lists_deliveries(
    alpha, member_client, woo_deliver
):
    client, _ = member_client(alpha, role="developer")
    page = client.get("/settings/integrations/")
    assert page.status_code == 200
    assert b"/api/v1/connectors/woocommerce/webhook" in page.content

    generated = client.post("/settings/integrations/woocommerce/", {"site_url": ""})
    secret = re.search(
        rb'data-testid="woo-secret">.*?<code>([^<]+)</code>', generated.content, re.S
    )
    assert secret is not None
    secret = secret.group(1).decode()
    woo_deliver(alpha, "product.created", woo_product(794), secret=secret)
    woo_deliver(alpha, "product.created", None, secret=secret, body=b"{oops")

    again = client.get("/settings/integrations/")
    assert secret.encode() not in again.content
    assert again.content.count(b'data-testid="connector-delivery"') == 2
    assert b"Not valid JSON" in again.content
    assert b"items_created: 1" in again.content


def test_integrations_page_saves_the_shopify_secret_and_names_bad_fields(alpha, member_client):
    client, _ = member_client(alpha, role="owner")

    bad = client.post(
        "/settings/integrations/shopify/", {"shop_domain": "nope", "secret": "shpss_" + "a" * 32}
    )
    good = client.post(
        "/settings/integrations/shopify/",
        {"shop_domain": "Alpha-Shop.myshopify.com", "secret": "shpss_" + "a" * 32},
    )

    assert bad.status_code == 400
    assert b"The shop&#x27;s myshopify.com domain" in bad.content
    assert good.status_code == 200
    assert b"shpss_" not in good.content
    with tenant_context(alpha):
        connection = StoreConnection.objects.get()
    assert (connection.shop_domain, connection.webhook_secret) == (
        "alpha-shop.myshopify.com",
        "shpss_" + "a" * 32,
    )
    assert sign(connection.webhook_secret, b"{}")  # usable as the HMAC key


def test_an_analyst_sees_integrations_but_cannot_generate_a_secret(alpha, member_client):
    client, _ = member_client(alpha, role="analyst")

    page = client.get("/settings/integrations/")
    refused = client.post("/settings/integrations/woocommerce/", {"site_url": ""})

    assert page.status_code == 200
    assert b"Generate the secret" not in page.content
    assert refused.status_code == 403
    with tenant_context(alpha):
        assert StoreConnection.objects.count() == 0
