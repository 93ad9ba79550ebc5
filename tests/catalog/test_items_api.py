"""Items: upsert one or many, read with cursor pagination and filters, delete = hide + audit."""

from decimal import Decimal

import orjson
import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.catalog.models import Item
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


def _put(client, item_id, body):
    return client.put(
        f"/api/v1/items/{item_id}", data=orjson.dumps(body), content_type="application/json"
    )


def _bulk(client, body, **extra):
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post("/api/v1/items/bulk", data=data, content_type="application/json", **extra)


FULL = {
    "title": "Blue mug",
    "description": "Stoneware.",
    "categories": ["kitchen", "mugs"],
    "price": "12.50",
    "in_stock": False,
    "attributes": {"colour": "blue"},
}


def test_put_creates_then_replaces_an_item(alpha, api):
    client = api(alpha)

    created = _put(client, "mug-1", FULL)
    replaced = _put(client, "mug-1", {"title": "Red mug", "price": 3})

    assert created.status_code == 201
    body = created.json()
    assert {k: body[k] for k in FULL} == FULL
    assert body["item_id"] == "mug-1"
    assert replaced.status_code == 200
    with tenant_context(alpha):
        item = Item.objects.get(item_id="mug-1")
    assert (item.title, item.description, item.categories, item.price, item.in_stock) == (
        "Red mug",
        "",
        [],
        Decimal("3.00"),
        True,
    )
    assert item.attributes == {}


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"title": 5}, "title", "Must be a string."),
        ({"title": "t" * 501}, "title", "At most 500 characters."),
        ({"description": ["x"]}, "description", "Must be a string."),
        ({"categories": "mugs"}, "categories", "Must be a list of strings."),
        ({"categories": ["ok", 3]}, "categories", "Each category: must be a string."),
        ({"price": -1}, "price", "Must be 0 or more."),
        ({"price": "abc"}, "price", "Must be a decimal number."),
        ({"price": True}, "price", "Must be a decimal number."),
        ({"price": "1.234"}, "price", "At most 2 decimal places."),
        ({"in_stock": "yes"}, "in_stock", "Must be true or false."),
        ({"attributes": [1]}, "attributes", "Must be a JSON object."),
        ({"attributes": {"k": "v" * 8200}}, "attributes", "At most 8192 bytes as JSON."),
        ({"attributes": {"k": "a\x00"}}, "attributes", "Must not contain NUL characters."),
        ({"item_id": "other"}, "item_id", "Must match the item_id in the URL."),
        ({"colour": "red"}, "colour", "Unknown field."),
    ],
)
def test_put_rejects_each_invalid_field_and_writes_nothing(alpha, api, body, field, message):
    response = _put(api(alpha), "mug-1", body)

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": f"Invalid input in: {field}.",
            "fields": {field: [message]},
        }
    }
    with tenant_context(alpha):
        assert not Item.objects.filter(item_id="mug-1").exists()


def test_bulk_upserts_valid_rows_and_reports_invalid_ones(alpha, api):
    client = api(alpha)
    _put(client, "a", {"title": "Old A"})

    response = _bulk(
        client,
        [
            {"item_id": "a", "title": "New A"},
            {"item_id": "b", "title": "B", "categories": ["x"]},
            {"title": "no id"},
            {"item_id": "b", "title": "B again"},
            {"item_id": "c", "price": -2},
        ],
    )

    assert response.status_code == 200
    assert response.json() == {
        "created": 1,
        "updated": 1,
        "errors": [
            {"index": 2, "field": "item_id", "message": "This field is required."},
            {
                "index": 3,
                "field": "item_id",
                "message": "Repeats the item_id of row 1 in this batch.",
            },
            {"index": 4, "field": "price", "message": "Must be 0 or more."},
        ],
    }
    with tenant_context(alpha):
        titles = dict(Item.objects.exclude(item_id="alpha-only").values_list("item_id", "title"))
    assert titles == {"a": "New A", "b": "B"}


def test_bulk_over_1000_items_is_400_and_nothing_written(alpha, api):
    response = _bulk(api(alpha), {"items": [{"item_id": f"i{n}"} for n in range(1001)]})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many"
    with tenant_context(alpha):
        assert Item.objects.count() == 1


def test_bulk_body_over_10_mb_is_413_through_drf_parsing(alpha, api):
    body = orjson.dumps([{"item_id": f"i{n}", "description": "d" * 11_000} for n in range(1000)])
    assert len(body) > 10 * 1024 * 1024

    response = _bulk(api(alpha), body)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    with tenant_context(alpha):
        assert Item.objects.count() == 1


def test_bulk_malformed_json_is_400(alpha, api):
    response = _bulk(api(alpha), b"[{")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_list_is_cursor_paginated_and_filtered(alpha, api):
    with tenant_context(alpha):
        ItemFactory(item_id="k1", categories=["kitchen"], in_stock=True)
        ItemFactory(item_id="k2", categories=["kitchen", "mugs"], in_stock=False)
        ItemFactory(item_id="g1", categories=["garden"], in_stock=True)
        ItemFactory(item_id="hidden", categories=["kitchen"], is_hidden=True)
    client = api(alpha, scopes=("recommend",))

    first = client.get("/api/v1/items/?page_size=2")
    second = client.get(first.json()["next"])
    kitchen = client.get("/api/v1/items/?category=kitchen")
    kitchen_in_stock = client.get("/api/v1/items/?category=kitchen&in_stock=false")
    bad = client.get("/api/v1/items/?in_stock=maybe")

    assert [i["item_id"] for i in first.json()["results"]] == ["alpha-only", "k1"]
    assert [i["item_id"] for i in second.json()["results"]] == ["k2", "g1"]
    assert second.json()["next"] is None
    assert [i["item_id"] for i in kitchen.json()["results"]] == ["k1", "k2"]
    assert [i["item_id"] for i in kitchen_in_stock.json()["results"]] == ["k2"]
    assert bad.status_code == 400
    assert bad.json()["error"] == {
        "code": "invalid",
        "message": "Invalid input in: in_stock.",
        "fields": {"in_stock": ["Must be true or false."]},
    }


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("true", ["k1"]),
        ("1", ["k1"]),
        ("yes", ["k1"]),
        ("ON", ["k1"]),
        ("false", ["k2"]),
        ("0", ["k2"]),
        ("no", ["k2"]),
        ("off", ["k2"]),
        ("", ["k1", "k2"]),
    ],
)
def test_list_in_stock_accepts_the_shared_boolean_words(alpha, api, word, expected):
    with tenant_context(alpha):
        ItemFactory(item_id="k1", categories=["kitchen"], in_stock=True)
        ItemFactory(item_id="k2", categories=["kitchen"], in_stock=False)
    client = api(alpha, scopes=("recommend",))

    response = client.get(f"/api/v1/items/?category=kitchen&in_stock={word}")

    assert response.status_code == 200
    assert [i["item_id"] for i in response.json()["results"]] == expected


def test_list_query_count_does_not_grow_with_items(alpha, api, django_assert_max_num_queries):
    with tenant_context(alpha):
        ItemFactory.create_batch(30)
    client = api(alpha)
    client.get("/api/v1/items/")  # warm the key cache

    # At most the host's tenant (cached in-process for 5 s) and one page of items.
    with django_assert_max_num_queries(2):
        response = client.get("/api/v1/items/?page_size=50")

    assert len(response.json()["results"]) == 31


def test_delete_hides_at_once_keeps_history_and_is_audited(alpha, api):
    client = api(alpha)
    _put(client, "mug-1", FULL)

    response = client.delete("/api/v1/items/mug-1")
    again = client.delete("/api/v1/items/mug-1")

    assert response.status_code == 204
    assert again.status_code == 404
    assert client.get("/api/v1/items/mug-1").status_code == 404
    assert "mug-1" not in [i["item_id"] for i in client.get("/api/v1/items/").json()["results"]]
    with tenant_context(alpha):
        item = Item.objects.get(item_id="mug-1")
        audit = list(
            AuditEvent.objects.filter(action="item.deleted").values_list(
                "target_type", "target_id", "actor_type"
            )
        )
    assert item.is_hidden is True
    assert item.title == "Blue mug"
    assert audit == [("item", "mug-1", "api_key")]


def test_a_read_scope_key_cannot_write_items(alpha, api):
    client = api(alpha, scopes=("recommend",))

    put = _put(client, "mug-1", FULL)
    delete = client.delete("/api/v1/items/alpha-only")

    assert (put.status_code, delete.status_code) == (403, 403)
    with tenant_context(alpha):
        assert list(Item.objects.values_list("item_id", "is_hidden")) == [("alpha-only", False)]


def test_store_a_key_cannot_read_or_write_store_b_items(alpha, beta, api, store_client):
    alpha_key = api(alpha).defaults["HTTP_AUTHORIZATION"]
    on_beta = store_client(beta, HTTP_AUTHORIZATION=alpha_key)

    read = on_beta.get("/api/v1/items/beta-only")
    listing = on_beta.get("/api/v1/items/")
    write = _put(on_beta, "beta-only", {"title": "hijacked"})
    delete = on_beta.delete("/api/v1/items/beta-only")
    alpha_view = api(alpha).get("/api/v1/items/beta-only")

    assert [read.status_code, listing.status_code, write.status_code, delete.status_code] == [
        401
    ] * 4
    assert alpha_view.status_code == 404
    with tenant_context(beta):
        assert list(Item.objects.values_list("item_id", "title", "is_hidden")) == [
            ("beta-only", "Beta only item", False)
        ]


def test_openapi_schema_and_docs_are_served_on_store_hosts(alpha, store_client):
    client = store_client(alpha)

    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {
        "/api/v1/events/bulk",
        "/api/v1/items/bulk",
        "/api/v1/items/{item_id}",
        "/api/v1/users/{user_id}/export",
    } <= set(paths)
    assert docs.status_code == 200
