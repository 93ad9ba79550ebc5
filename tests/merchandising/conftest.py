"""A small known catalog in store alpha (no model: the lists come from PostgreSQL popularity,
so every expected list is exact), and clients with keys of the right scopes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog.models import Event, Item
from apps.merchandising import placing
from apps.recommendations import cache as rcache
from apps.recommendations import serving
from tests.factories import api_key_for

# item: (category, price, in stock, hidden, attributes, distinct shoppers in the last days)
CATALOG = {
    "p1": ("shoes", "50", True, False, {"brand": "acme", "on_sale": True}, 8),
    "p2": ("shoes", "80", True, False, {"brand": "zeta"}, 7),
    "p3": ("bags", "30", True, False, {"brand": "acme"}, 6),
    "p4": ("bags", "120", True, False, {"brand": "zeta", "on_sale": True}, 5),
    "p5": ("hats", "20", True, False, {"brand": "acme"}, 4),
    "p6": ("shoes", "60", False, False, {"brand": "acme"}, 3),
    "p7": ("hats", "15", True, True, {"brand": "zeta"}, 2),
    "p8": ("bags", "45", True, False, {"brand": "acme"}, 1),
}


def build_catalog(tenant) -> None:
    now = timezone.now()
    with tenant_context(tenant):
        Item.objects.bulk_create(
            Item(
                item_id=item,
                title=f"Title {item}",
                categories=[category],
                price=Decimal(price),
                in_stock=in_stock,
                is_hidden=hidden,
                attributes=attributes,
            )
            for item, (category, price, in_stock, hidden, attributes, _) in CATALOG.items()
        )
        Event.objects.bulk_create(
            Event(
                user_id=f"fan-{n}",
                item_id=item,
                type=Event.Type.VIEW,
                timestamp=now - timedelta(hours=1 + n),
            )
            for item, (*_, fans) in CATALOG.items()
            for n in range(fans)
        )
    connection.set_schema_to_public()


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    serving.forget_all()
    placing.forget_all()
    rcache._redis_down_until = 0.0
    yield
    serving.forget_all()
    placing.forget_all()


@pytest.fixture
def catalog(alpha):
    build_catalog(alpha)
    return alpha


@pytest.fixture
def api(store_client):
    """`api(tenant, scopes)` → a client with a fresh key of that store."""

    def make(tenant, scopes=("recommend", "manage")):
        _, key = api_key_for(tenant, scopes=scopes)
        connection.set_schema_to_public()
        return store_client(tenant, HTTP_AUTHORIZATION=f"Bearer {key}")

    return make


@pytest.fixture
def placement(api, django_capture_on_commit_callbacks):
    """`placement(tenant, name, scenario, rules)` → creates it through the API (committed
    hooks run, as after a real commit) and returns the response."""

    def make(tenant, name, scenario="personal", rules=None):
        client = api(tenant, scopes=("manage",))
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/api/v1/placements/",
                {"name": name, "scenario": scenario, "rules": rules or {}},
                content_type="application/json",
            )
        assert response.status_code == 201, response.json()
        return response

    return make
