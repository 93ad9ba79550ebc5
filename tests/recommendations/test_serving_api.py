"""The recommendation endpoints end to end: real data ingested through the services, a real
trained model, the real cache, through the HTTP API of the store's host."""

from __future__ import annotations

import orjson
import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.catalog.models import Event, Item
from apps.catalog.services import events_ingest, item_delete, items_upsert
from apps.core.cache import redis_client
from apps.recommendations import cache as rcache
from apps.recommendations.models import ModelVersion

pytestmark = pytest.mark.django_db


def seen_by(tenant, user_id: str) -> set[str]:
    with tenant_context(tenant):
        return set(Event.objects.filter(user_id=user_id).values_list("item_id", flat=True))


def items_of(response) -> list[str]:
    return [row["item_id"] for row in response.json()["items"]]


def test_trained_store_serves_unseen_items_of_its_own_catalog(stores, key_client):
    # given store A trained on its shoppers' ratings
    client = key_client(stores.a)

    # when shopper 7 asks for recommendations
    response = client.get("/api/v1/recommendations/users/7")

    # then ten items of store A's catalog the shopper has not rated, from the active model
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["recommendation_id", "model_version", "strategy", "items"]
    assert len(body["recommendation_id"]) == 32
    assert body["model_version"] == stores.version_a.label
    assert body["strategy"] == stores.version_a.strategy
    assert stores.version_a.status == ModelVersion.Status.ACTIVE
    items = items_of(response)
    assert len(items) == 10
    assert len(set(items)) == 10
    assert all(item.startswith("a") for item in items)
    assert not set(items) & seen_by(stores.a, "7")
    scores = [row["score"] for row in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_store_b_never_gets_store_a_lists_or_models(stores, key_client):
    # given both stores trained; their first versions may share a database id, and store A's
    # cached list of shopper 7 is replaced by a recognisable one
    a_key = rcache.list_key(stores.a.schema_name, stores.version_a.pk, "7")
    redis_client().set(a_key, orjson.dumps(["als", [["a-from-cache", 9.0]]]))

    # when shopper 7 asks store B (same shopper id), then store A
    from_b = key_client(stores.b).get("/api/v1/recommendations/users/7?k=20")
    from_a = key_client(stores.a).get("/api/v1/recommendations/users/7?k=1")

    # then B's list holds only B's items and A's list is A's cache entry
    assert from_b.status_code == 200
    assert all(item.startswith("b") for item in items_of(from_b))
    assert from_b.json()["model_version"] == stores.version_b.label
    assert items_of(from_a) == ["a-from-cache"]
    redis_client().delete(a_key)


def test_a_key_of_store_a_is_refused_on_store_b(stores, key_client, store_client):
    # given a recommend key of store A
    client_a = key_client(stores.a)
    key = client_a.defaults["HTTP_AUTHORIZATION"]

    # when it is used on store B's host
    response = store_client(stores.b, HTTP_AUTHORIZATION=key).get("/api/v1/recommendations/users/7")

    # then 401
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_a_cached_list_is_served_from_redis(stores, key_client):
    # given a precomputed entry for shopper 11 of the active version
    key = rcache.list_key(stores.a.schema_name, stores.version_a.pk, "11")
    assert redis_client().exists(key) == 1
    redis_client().set(key, orjson.dumps(["als+rerank", [["a1", 3.0], ["a2", 2.0], ["a3", 1.0]]]))

    # when the shopper asks for two items
    response = key_client(stores.a).get("/api/v1/recommendations/users/11?k=2")

    # then the cached list is what is served
    assert response.json()["items"] == [
        {"item_id": "a1", "score": 3.0},
        {"item_id": "a2", "score": 2.0},
    ]
    redis_client().delete(key)


def test_a_miss_is_computed_and_fills_the_cache(stores, key_client):
    key = rcache.list_key(stores.a.schema_name, stores.version_a.pk, "12")
    redis_client().delete(key)

    response = key_client(stores.a).get("/api/v1/recommendations/users/12?k=5")

    assert response.status_code == 200
    strategy, cached, reasons = orjson.loads(redis_client().get(key))
    assert strategy == response.json()["strategy"]
    assert [item for item, _ in cached[:5]] == items_of(response)
    assert len(cached) == len(reasons) == 100


def test_unknown_shopper_gets_a_cold_start_list_not_a_404(stores, key_client):
    response = key_client(stores.a).get("/api/v1/recommendations/users/never-seen?k=5")

    assert response.status_code == 200
    assert response.json()["strategy"] == "trending"
    assert len(items_of(response)) == 5


def test_new_shopper_with_events_after_training_gets_a_session_list(stores, key_client):
    # given a shopper unknown to the model who viewed two movies since
    with tenant_context(stores.a):
        events_ingest(
            rows=[
                {
                    "user_id": "newcomer",
                    "item_id": "a50",
                    "type": "view",
                    "timestamp": "2030-01-01T00:00:00Z"[:0] or _recent(1),
                },
                {"user_id": "newcomer", "item_id": "a181", "type": "view", "timestamp": _recent(0)},
            ]
        )
    response = key_client(stores.a).get("/api/v1/recommendations/users/newcomer?k=5")

    assert response.status_code == 200
    assert response.json()["strategy"] == "session"
    assert not set(items_of(response)) & {"a50", "a181"}


def _recent(minutes_ago: int) -> str:
    from datetime import timedelta

    from django.utils import timezone

    return (timezone.now() - timedelta(minutes=minutes_ago + 1)).isoformat()


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("k=101", "k", "Must be at most 100."),
        ("k=0", "k", "Must be at least 1."),
        ("k=ten", "k", "A whole number is required."),
        ("exclude_seen=maybe", "exclude_seen", "Must be true or false."),
        ("in_stock=perhaps", "in_stock", "Must be true or false."),
    ],
)
def test_invalid_parameters_are_400_naming_the_field(stores, key_client, query, field, message):
    response = key_client(stores.a).get(f"/api/v1/recommendations/users/7?{query}")

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": f"Invalid input in: {field}.",
            "fields": {field: [message]},
        }
    }


def test_k_above_100_is_refused_on_every_list_endpoint(stores, key_client):
    client = key_client(stores.a)
    for path in (
        "/api/v1/recommendations/users/7/buy-again",
        "/api/v1/recommendations/items/a50/similar",
        "/api/v1/recommendations/items/a50/bought-together",
        "/api/v1/recommendations/trending",
    ):
        response = client.get(f"{path}?k=101")
        assert response.status_code == 400, path
        assert response.json()["error"]["fields"] == {"k": ["Must be at most 100."]}


def test_recommendations_need_the_recommend_scope(stores, key_client, store_client):
    ingest_only = key_client(stores.a, scopes=("ingest",))

    assert ingest_only.get("/api/v1/recommendations/trending").status_code == 403
    assert ingest_only.get("/api/v1/recommendations/trending").json()["error"]["code"] == (
        "missing_scope"
    )
    assert store_client(stores.a).get("/api/v1/recommendations/trending").status_code == 401


def test_hidden_items_never_appear(stores, key_client, django_capture_on_commit_callbacks):
    # given the first item recommended to shopper 7
    client = key_client(stores.a)
    first = items_of(client.get("/api/v1/recommendations/users/7?k=1"))[0]

    # when the store deletes (hides) it through the catalog service
    with tenant_context(stores.a), django_capture_on_commit_callbacks(execute=True):
        item_delete(item_id=first)

    # then it is gone from every list
    assert first not in items_of(client.get("/api/v1/recommendations/users/7?k=100"))
    assert first not in items_of(client.get("/api/v1/recommendations/trending?k=100"))
    assert first not in items_of(client.get("/api/v1/recommendations/items/a50/similar?k=100"))


def test_out_of_stock_items_are_left_out_unless_asked(
    stores, key_client, django_capture_on_commit_callbacks
):
    client = key_client(stores.a)
    first = items_of(client.get("/api/v1/recommendations/users/7?k=1"))[0]
    with tenant_context(stores.a), django_capture_on_commit_callbacks(execute=True):
        item = Item.objects.get(item_id=first)
        items_upsert(
            rows=[
                {
                    "item_id": first,
                    "title": item.title,
                    "categories": item.categories,
                    "in_stock": False,
                }
            ]
        )

    default = items_of(client.get("/api/v1/recommendations/users/7?k=10"))
    with_oos = items_of(client.get("/api/v1/recommendations/users/7?k=10&in_stock=false"))

    assert first not in default
    assert with_oos[0] == first


def test_category_filter_keeps_only_that_category(stores, key_client):
    response = key_client(stores.a).get("/api/v1/recommendations/users/7?k=10&category=Horror")

    items = items_of(response)
    assert len(items) == 10
    with tenant_context(stores.a):
        categories = dict(
            Item.objects.filter(item_id__in=items).values_list("item_id", "categories")
        )
    assert all("Horror" in categories[item] for item in items)
    assert not set(items) & seen_by(stores.a, "7")


def test_exclude_seen_false_may_bring_back_rated_items(stores, key_client):
    client = key_client(stores.a)

    excluded = items_of(client.get("/api/v1/recommendations/users/7?k=50"))
    allowed = items_of(client.get("/api/v1/recommendations/users/7?k=50&exclude_seen=false"))

    seen = seen_by(stores.a, "7")
    assert not set(excluded) & seen
    assert set(allowed) & seen


def test_similar_and_bought_together_of_a_catalog_item(stores, key_client):
    client = key_client(stores.a)

    similar = client.get("/api/v1/recommendations/items/a50/similar?k=5")
    together = client.get("/api/v1/recommendations/items/a50/bought-together?k=5")

    assert similar.status_code == 200
    assert similar.json()["strategy"] == "als_item_cosine"
    assert len(items_of(similar)) == 5
    assert "a50" not in items_of(similar)
    assert together.status_code == 200
    assert len(items_of(together)) == 5
    assert "a50" not in items_of(together)


def test_an_item_not_in_the_catalog_is_404(stores, key_client):
    client = key_client(stores.a)

    for path in ("similar", "bought-together"):
        response = client.get(f"/api/v1/recommendations/items/b50/{path}")
        assert response.status_code == 404
        assert response.json() == {
            "error": {
                "code": "not_found",
                "message": "No item 'b50' in this store's catalog.",
                "fields": {},
            }
        }


def test_trending_with_a_category(stores, key_client):
    response = key_client(stores.a).get("/api/v1/recommendations/trending?k=8&category=Comedy")

    assert response.status_code == 200
    assert response.json()["strategy"] == "trending"
    items = items_of(response)
    assert len(items) == 8
    with tenant_context(stores.a):
        assert Item.objects.filter(item_id__in=items, categories__contains=["Comedy"]).count() == 8


def test_buy_again_lists_items_the_shopper_came_back_to(stores, key_client):
    # given a shopper who bought the same item twice after training
    with tenant_context(stores.a):
        events_ingest(
            rows=[
                {"user_id": "7", "item_id": "a1", "type": "purchase", "timestamp": _recent(5)},
                {"user_id": "7", "item_id": "a1", "type": "purchase", "timestamp": _recent(1)},
            ]
        )
    response = key_client(stores.a).get("/api/v1/recommendations/users/7/buy-again?k=5")

    assert response.status_code == 200
    assert response.json()["strategy"] == "buy_again"
    assert response.json()["model_version"] == stores.version_a.label


def test_with_redis_down_recommendations_still_answer(stores, key_client, redis_down):
    # given Redis unreachable (the client points at a closed port)
    client = key_client(stores.a)

    # when shoppers ask
    known = client.get("/api/v1/recommendations/users/7?k=5")
    trending = client.get("/api/v1/recommendations/trending?k=5")

    # then the model answers directly
    assert known.status_code == 200
    assert known.json()["model_version"] == stores.version_a.label
    assert len(items_of(known)) == 5
    assert not set(items_of(known)) & seen_by(stores.a, "7")
    assert trending.status_code == 200
    assert len(items_of(trending)) == 5


def test_without_any_model_the_store_serves_popularity_from_postgres(
    stores, key_client, redis_down
):
    # given store A with its active version retired (inside this test's transaction)
    with tenant_context(stores.a):
        ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).update(
            status=ModelVersion.Status.RETIRED
        )
        connection.set_schema_to_public()

    response = key_client(stores.a).get("/api/v1/recommendations/users/7?k=5")

    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == "none"
    assert body["strategy"] == "popularity"
    assert len(body["items"]) == 5
    assert not set(items_of(response)) & seen_by(stores.a, "7")
