"""Billing fixtures: the fake Stripe server, signed webhook deliveries, priced plans, and a
clean slate of this run's billing Redis keys for every test."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings

from apps.billing.models import Plan
from apps.core.cache import redis_client
from tests.billing.fake_stripe import API_KEY, FakeStripe

WEBHOOK_SECRET = "whsec_test_shelfsense"
STARTER_PRICE = "price_starter_monthly"
GROWTH_PRICE = "price_growth_monthly"
GROWTH_METERED_PRICE = "price_growth_events_metered"


@pytest.fixture(autouse=True)
def _clean_billing_redis_keys():
    client = redis_client()
    pattern = f"*:{settings.CACHES['default']['KEY_PREFIX']}:billing:*"
    for key in client.scan_iter(match=pattern, count=1000):
        client.delete(key)


@pytest.fixture(scope="session")
def fake_stripe_server():
    server = FakeStripe()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_stripe(fake_stripe_server: FakeStripe, settings) -> FakeStripe:
    fake_stripe_server.reset()
    settings.STRIPE_API_BASE = fake_stripe_server.url
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    return fake_stripe_server


@pytest.fixture
def priced_plans(db) -> dict[str, Plan]:
    Plan.objects.filter(code="starter").update(stripe_price_id=STARTER_PRICE)
    Plan.objects.filter(code="growth").update(
        stripe_price_id=GROWTH_PRICE, stripe_metered_price_id=GROWTH_METERED_PRICE
    )
    return {plan.code: plan for plan in Plan.objects.all()}


def sign(payload: str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """Stripe's scheme: `t=<ts>,v1=<hex HMAC-SHA256(secret, "<ts>.<payload>")>`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(
        secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def stripe_event(
    event_type: str, obj: dict[str, Any], *, event_id: str, created: int = 1_780_000_100
) -> str:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "api_version": settings.STRIPE_API_VERSION,
            "created": created,
            "livemode": False,
            "data": {"object": obj},
        }
    )


@pytest.fixture
def post_webhook(public_client) -> Callable[..., Any]:
    def post(payload: str, *, signature: str | None = None):
        return public_client.post(
            "/billing/stripe/webhook/",
            data=payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign(payload) if signature is None else signature,
        )

    return post
