"""Merchandising state is per store (rotation keys, item facts, placements in memory) and a
shopper's rotation state goes with their erasure."""

from __future__ import annotations

import fnmatch

import orjson
import pytest
from django_tenants.utils import tenant_context

from apps.catalog.models import Event, Item
from apps.catalog.services import shopper_erase
from apps.core.cache import redis_client, tenant_key
from apps.core.erasure import SHOPPER_KEY_FAMILIES, shopper_export
from apps.merchandising.placing import rotation_key
from tests.merchandising.conftest import build_catalog

pytestmark = pytest.mark.django_db


def items(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row["item_id"] for row in response.json()["items"]]


def test_same_ids_in_two_stores_keep_their_own_facts_and_rotation(catalog, beta, api, placement):
    # given both stores with the same item ids, p1 a zeta shoe in beta only, and a rotating
    # placement of the same name in each
    build_catalog(beta)
    with tenant_context(beta):
        Item.objects.filter(item_id="p1").update(attributes={"brand": "zeta"})
    for store in (catalog, beta):
        placement(store, "home", rules={"rotation": {"window_seconds": 600}})
    alpha_client, beta_client = api(catalog), api(beta)
    path = "/api/v1/recommendations/users/same-shopper?placement=home&k=2"

    # when the same shopper id is served in alpha twice, then in beta once
    alpha_lists = [items(alpha_client.get(path)) for _ in range(2)]
    beta_first = items(beta_client.get(path))
    acme_alpha = items(alpha_client.get("/api/v1/recommendations/users/x?attr.brand=acme&k=2"))
    acme_beta = items(beta_client.get("/api/v1/recommendations/users/x?attr.brand=acme&k=2"))

    # then beta's first list is not rotated by alpha's state, and each store's facts apply
    assert alpha_lists == [["p1", "p2"], ["p2", "p3"]]
    assert beta_first == ["p1", "p2"]
    assert acme_alpha == ["p1", "p3"]
    assert acme_beta == ["p3", "p5"]
    assert orjson.loads(
        redis_client().get(rotation_key(beta.schema_name, "home", "u:same-shopper"))
    ) == [
        "p1",
        "p2",
    ]


def test_a_shoppers_rotation_state_is_exported_and_erased(catalog, api, placement):
    placement(catalog, "home", rules={"rotation": {"window_seconds": 600}})
    with tenant_context(catalog):
        Event.objects.create(
            user_id="leaving", item_id="p8", type="view", timestamp="2026-11-30T10:00:00Z"
        )
    api(catalog).get("/api/v1/recommendations/users/leaving?placement=home&k=2")
    key = rotation_key(catalog.schema_name, "home", "u:leaving")
    pattern = tenant_key(
        SHOPPER_KEY_FAMILIES["placement-rotation"].format(user_id="leaving"),
        schema_name=catalog.schema_name,
    )

    with tenant_context(catalog):
        exported = shopper_export("leaving")["placements"]
        erased = shopper_erase(user_id="leaving")

    assert fnmatch.fnmatchcase(key, pattern)
    assert exported == {"home": ["p1", "p2"]}
    assert erased["placement_rotation"] == 1
    assert redis_client().exists(key) == 0
