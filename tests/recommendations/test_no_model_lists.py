"""What a store serves before any model is active: lists read from PostgreSQL."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.catalog.services import events_ingest, items_upsert
from tests.recommendations.test_serving_api import _recent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind", ["similar", "bought-together"])
def test_a_new_stores_item_lists_are_its_categorys_popular_items_with_their_own_scores(
    alpha, key_client, kind
):
    # given a store without a model: shoes bought 3, 2 and 1 times, a bag bought 5 times
    with tenant_context(alpha):
        items_upsert(
            rows=[{"item_id": f"shoe-{n}", "categories": ["shoes"]} for n in range(4)]
            + [{"item_id": "bag", "categories": ["bags"]}]
        )
        bought = {"shoe-1": 3, "shoe-2": 2, "shoe-3": 1, "bag": 5}
        events_ingest(
            rows=[
                {"user_id": f"u{n}", "item_id": item, "type": "purchase", "timestamp": _recent(n)}
                for item, times in bought.items()
                for n in range(times)
            ]
        )

    response = key_client(alpha).get(f"/api/v1/recommendations/items/shoe-0/{kind}?k=5")

    # then the list is the other shoes by popularity, scored as popularity scores them: a
    # list that only tops up (nothing came before it) is not shifted below zero
    assert response.status_code == 200
    body = response.json()
    assert (body["model_version"], body["strategy"]) == ("none", "category")
    items = [entry["item_id"] for entry in body["items"]]
    scores = [entry["score"] for entry in body["items"]]
    assert items == ["shoe-1", "shoe-2", "shoe-3"]
    assert all(score > 0 for score in scores)
    assert scores == sorted(scores, reverse=True)
