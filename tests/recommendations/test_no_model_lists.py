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


def test_a_store_that_sends_only_events_gets_lists_before_and_after_training(
    alpha, movielens, key_client, django_capture_on_commit_callbacks
):
    # given a store that sends its shoppers' events but never its catalog (every item a stub)
    from datetime import UTC, datetime

    from django.db import connection
    from django.utils import timezone

    from apps.recommendations.models import ModelVersion
    from tests.recommendations.conftest import train_now

    shift = timezone.now().timestamp() - 60 - max(ts for *_, ts in movielens.ratings)
    rows = [
        {
            "event_id": f"e{user}-{item}",
            "user_id": str(user),
            "item_id": f"m{item}",
            "type": "rating",
            "value": float(rating),
            "timestamp": datetime.fromtimestamp(ts + shift, UTC).isoformat(),
        }
        for user, item, rating, ts in movielens.ratings
    ]
    client = key_client(alpha)
    with tenant_context(alpha):
        for start in range(0, len(rows), 5000):
            events_ingest(rows=rows[start : start + 5000])
    connection.set_schema_to_public()

    # then before any model its trending list is its events' items
    trending = client.get("/api/v1/recommendations/trending?k=5").json()
    assert len(trending["items"]) == 5

    # and once trained, personal and similar lists are served from those items
    with tenant_context(alpha), django_capture_on_commit_callbacks(execute=True):
        version = train_now()  # activation announced on commit: serving switches at once
    connection.set_schema_to_public()
    assert version.status == ModelVersion.Status.ACTIVE, version.activation_note
    personal = client.get("/api/v1/recommendations/users/1?k=5").json()
    similar = client.get("/api/v1/recommendations/items/m50/similar?k=5")
    assert (personal["model_version"], len(personal["items"])) == ("v1", 5)
    assert similar.status_code == 200
    assert len(similar.json()["items"]) == 5
    assert all(entry["item_id"].startswith("m") for entry in personal["items"])
