"""Connector fixtures: a store connected to WooCommerce / Shopify (through the real services)
and a `deliver` helper that posts a payload to a store's webhook endpoint signed as the
platform signs it (base64 HMAC-SHA256 of the raw body)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json

import pytest
from django_tenants.utils import tenant_context

from apps.connectors.services import (
    connection_shopify_secret_set,
    connection_woocommerce_secret_generate,
)
from tests.conftest import _clear_test_redis_keys

SHOPIFY_SECRET = "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"
_ids = itertools.count(1)


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture(autouse=True)
def _fresh_redis():
    _clear_test_redis_keys()
    yield
    _clear_test_redis_keys()


@pytest.fixture
def woo_connect():
    """`woo_connect(tenant)` → the WooCommerce secret generated for the store."""

    def connect(tenant) -> str:
        with tenant_context(tenant):
            _, secret = connection_woocommerce_secret_generate(site_url="https://shop.example")
        return secret

    return connect


@pytest.fixture
def shopify_connect():
    """`shopify_connect(tenant, domain=...)` → the app secret the store was connected with."""

    def connect(tenant, domain: str = "alpha-shop.myshopify.com", secret=SHOPIFY_SECRET) -> str:
        with tenant_context(tenant):
            connection_shopify_secret_set(secret=secret, shop_domain=domain)
        return secret

    return connect


@pytest.fixture
def woo_deliver(store_client):
    """`woo_deliver(tenant, topic, payload, secret=..., delivery_id=None)` → the response of a
    delivery signed as WooCommerce signs it, with its headers."""

    def deliver(tenant, topic, payload, *, secret, delivery_id=None, body=None, signature=None):
        raw = body if body is not None else json.dumps(payload).encode()
        resource, event = topic.split(".")
        headers = {
            "X-WC-Webhook-Source": "https://shop.example/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": signature if signature is not None else sign(secret, raw),
            "X-WC-Webhook-ID": "12",
            "X-WC-Webhook-Delivery-ID": delivery_id or f"{next(_ids):032x}",
            "User-Agent": "WooCommerce/8.5.0 Hookshot (WordPress/6.4.2)",
        }
        return store_client(tenant).post(
            "/api/v1/connectors/woocommerce/webhook",
            data=raw,
            content_type="application/json",
            headers=headers,
        )

    return deliver


@pytest.fixture
def shopify_deliver(store_client):
    """`shopify_deliver(tenant, topic, payload, secret=..., webhook_id=None, shop=...)`."""

    def deliver(
        tenant,
        topic,
        payload,
        *,
        secret=SHOPIFY_SECRET,
        webhook_id=None,
        shop="alpha-shop.myshopify.com",
        body=None,
    ):
        raw = body if body is not None else json.dumps(payload).encode()
        headers = {
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(secret, raw),
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-API-Version": "2025-01",
            "X-Shopify-Webhook-Id": webhook_id or f"b54557e4-bdd9-4b37-8a5f-{next(_ids):012x}",
            "X-Shopify-Triggered-At": "2026-11-30T12:00:00.000000Z",
        }
        return store_client(tenant).post(
            "/api/v1/connectors/shopify/webhook",
            data=raw,
            content_type="application/json",
            headers=headers,
        )

    return deliver
