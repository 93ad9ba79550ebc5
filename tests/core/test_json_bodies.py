"""The API's one JSON parser (apps.core.parsers.JsonParser, DRF's default): a body nested too
deeply is 400 naming the body (the standard library's parser recursed until RecursionError, a
500), one over the upload limit is 413 in the JSON error body (Django's HTML 400 before), on
every endpoint that reads JSON, not only the store data API's."""

from __future__ import annotations

import orjson
import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.batchjobs.models import BatchJob
from apps.catalog.models import Item
from apps.core.parsers import MAX_DEPTH, JsonRefused, json_parse, nested_deeper_than
from apps.merchandising.models import Placement
from apps.recommendations.models import Experiment
from tests.factories import api_key_for

pytestmark = pytest.mark.django_db

TOO_DEEP = f"Nested deeper than {MAX_DEPTH} levels."
# (method, path) of endpoints parsing JSON with DRF, outside the store data API and in it.
ENDPOINTS = [
    ("post", "/api/v1/placements/"),
    ("put", "/api/v1/placements/home"),
    ("post", "/api/v1/recommendations/batch"),
    ("post", "/api/v1/experiments/"),
    ("put", "/api/v1/items/deep"),
    ("post", "/api/v1/items/bulk"),
]


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b"[" * depth + inner + b"]" * depth


@pytest.fixture
def client(alpha, store_client):
    _, key = api_key_for(alpha, scopes=("ingest", "recommend", "manage"))
    connection.set_schema_to_public()
    return store_client(alpha, HTTP_AUTHORIZATION=f"Bearer {key}")


def send(client, method: str, path: str, body: bytes):
    return getattr(client, method)(path, data=body, content_type="application/json")


def assert_nothing_written(tenant) -> None:
    with tenant_context(tenant):
        assert Placement.objects.count() == 0
        assert BatchJob.objects.count() == 0
        assert Experiment.objects.count() == 0
        assert list(Item.objects.values_list("item_id", flat=True)) == ["alpha-only"]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(nested(5000), id="5000-deep, past orjson's bound"),
        pytest.param(nested(1000), id="1000-deep, Python's recursion limit"),
        pytest.param(
            b'{"name": "home", "scenario": "personal", "rules": {"filters": {"attributes": '
            b'{"a": ' + nested(MAX_DEPTH) + b"}}}}",
            id="too deep inside a valid object",
        ),
    ],
)
def test_json_nested_too_deeply_is_400_naming_the_body(alpha, client, method, path, body):
    response = send(client, method, path, body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "parse_error"
    assert error["message"].startswith("Malformed JSON: ")
    assert error["fields"] == {"body": [TOO_DEEP]}
    assert_nothing_written(alpha)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_invalid_json_is_400_naming_the_body(alpha, client, method, path):
    response = send(client, method, path, b'{"name": ')

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["fields"]) == ("parse_error", {"body": ["Not valid JSON."]})
    assert error["message"].startswith("Malformed JSON: unexpected end of data")
    assert_nothing_written(alpha)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_a_body_over_10_mb_is_413_json(alpha, client, method, path):
    body = b"{" + b" " * (10 * 1024 * 1024) + b"}"

    response = send(client, method, path, body)

    assert response.status_code == 413
    assert response.json() == {
        "error": {
            "code": "too_large",
            "message": "The request body is larger than 10 MB.",
            "fields": {},
        }
    }
    assert_nothing_written(alpha)


def test_json_as_deep_as_the_bound_is_parsed(alpha, client):
    # MAX_DEPTH levels in all: the body object, rules, filters, attributes, then the rest.
    rules = {"filters": {"attributes": {"a": orjson.loads(nested(MAX_DEPTH - 5, b'"x"'))}}}
    body = orjson.dumps({"name": "home", "scenario": "personal", "rules": rules})

    response = send(client, "post", "/api/v1/placements/", body)

    # Parsed: the rules' own validation answers, naming its field.
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "rules.filters.attributes.a" in str(response.json()["error"]["fields"])


@pytest.mark.parametrize(
    ("value", "limit", "deeper"),
    [
        (1, 0, False),
        ([], 0, True),
        ([], 1, False),
        ({"a": [{"b": 1}]}, 2, True),
        ({"a": [{"b": 1}]}, 3, False),
        ([1, [2, [3]], {"x": "y"}], 3, False),
        ([1, [2, [3, []]]], 3, True),
    ],
)
def test_nesting_is_measured_in_levels_of_lists_and_objects(value, limit, deeper):
    assert nested_deeper_than(value, limit) is deeper


def test_json_parse_tells_not_json_from_too_deep():
    with pytest.raises(JsonRefused) as not_json:
        json_parse("{")
    with pytest.raises(JsonRefused) as too_deep:
        json_parse(nested(5000))

    assert not_json.value.problem == "Not valid JSON."
    assert too_deep.value.problem == TOO_DEEP
    # Unbounded (the events hot path): orjson's own bound only.
    assert nested_deeper_than(json_parse(nested(1000), max_depth=None), 999)


@pytest.mark.parametrize("field", ["value", "user_id", "item_id", "timestamp", "extra"])
def test_an_event_field_nested_as_deep_as_orjson_allows_is_a_row_error(alpha, client, field):
    # events/bulk leaves nesting to orjson's bound (its hot path); its rows are scalars.
    row = {"user_id": "u1", "item_id": "alpha-only", "type": "view", "timestamp": "x"}
    row.pop(field, None)
    body = b"[" + orjson.dumps(row)[:-1] + f', "{field}": '.encode() + nested(1000) + b"}]"

    response = send(client, "post", "/api/v1/events/bulk", body)

    assert response.status_code == 202
    assert response.json()["accepted"] == 0
    assert {error["index"] for error in response.json()["errors"]} == {0}
