"""Fuzzing (issue 13): schemathesis generates requests for every operation of a store's own
OpenAPI schema (/api/schema/ on the store's host) and sends them, authenticated with a real
API key of every scope, to the WSGI application in process, in a real store schema holding
items, shoppers and events. No answer may be a server error, and every answer must be one
the schema documents (status, content type, body: issue 17).

Besides schemathesis' own data (any Unicode in strings, NUL included, numbers at and beyond
the 64-bit bounds, path parameters with "/" and other URL characters), each operation gets
the explicit hostile values below. Examples per operation are bounded so that the run takes
well under two minutes (FUZZ_MAX_EXAMPLES raises it for a longer local run).
"""

from __future__ import annotations

import os
from urllib.parse import quote

import orjson
import pytest
import schemathesis
from django.conf import settings as settings_module
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django_tenants.utils import tenant_context
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.catalog.services import events_ingest, items_upsert, shopper_attributes_set
from apps.core.wsgi import keep_path_bytes
from apps.tenants.selectors import store_domain
from tests.factories import api_key_for, event_payload

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "12"))
HOSTILE_IDS = [
    "gid://shopify/Product/123",
    "a\x00b",
    "../../etc/passwd",
    "a%2Fb?c#d",
    " padded ",
    "x" * 129,
    "\u212b\u0301",
]


def _store_host_app(app, host: str):
    """The WSGI application as the store's host sees it (schemathesis' client sends
    Host: localhost, the operators' site)."""

    def wrapped(environ, start_response):
        environ["HTTP_HOST"] = host
        environ["SERVER_NAME"] = host
        return app(environ, start_response)

    return wrapped


@pytest.fixture
def _keep_test_transaction():
    """As Django's test client does: a request must not close the test's connection."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def _store_schema() -> dict:
    """The schema /api/schema/ serves on a store's host (drf-spectacular, no database)."""
    generator = SchemaGenerator(urlconf=settings_module.ROOT_URLCONF)
    return orjson.loads(OpenApiJsonRenderer().render(generator.get_schema(public=True)))


SCHEMA = schemathesis.openapi.from_dict(_store_schema())


@pytest.fixture
def store_api(alpha, subscribe, _keep_test_transaction):
    subscribe(alpha, "growth")
    with tenant_context(alpha):
        items_upsert(
            rows=[
                {"item_id": item, "title": f"Item {item}", "categories": ["hats"], "price": "9.5"}
                for item in ("sku-1", "sku-2", "gid://shopify/Product/123")
            ]
        )
        events_ingest(
            rows=[
                event_payload(event_id=f"e{n}", user_id=f"u{n % 3}", item_id=f"sku-{n % 2 + 1}")
                for n in range(12)
            ],
            source="api",
        )
        shopper_attributes_set(user_id="u1", attributes={"tier": "gold", "n": 2**63 - 1})
    _, key = api_key_for(alpha, scopes=("ingest", "recommend", "manage"))
    # The application as granian runs it (config/wsgi.py), in this process and transaction.
    return {
        "app": _store_host_app(keep_path_bytes(WSGIHandler()), store_domain(alpha.slug)),
        "headers": {"Authorization": f"Bearer {key}"},
    }


@SCHEMA.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_operation_answers_a_server_error_nor_breaks_its_schema(case, store_api):
    """Every answer is documented (issue 17): its status, content type and body conform."""
    response = case.call(**store_api)

    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


def test_the_schema_served_is_the_one_fuzzed(alpha, store_client):
    served = store_client(alpha).get("/api/schema/", {"format": "json"})
    operations = sorted(
        f"{operation.method.upper()} {operation.path}"
        for operation in (result.ok() for result in SCHEMA.get_all_operations())
    )

    assert served.status_code == 200
    assert orjson.loads(served.content)["paths"] == _store_schema()["paths"]

    assert len(operations) == len(set(operations))
    assert "GET /api/v1/items/{item_id}" in operations
    assert "DELETE /api/v1/users/{user_id}" in operations
    assert "GET /api/v1/recommendations/users/{user_id}/buy-again" in operations
    assert "POST /api/v1/experiments/" in operations


@pytest.mark.parametrize("item_id", HOSTILE_IDS)
def test_hostile_ids_on_every_id_path_never_answer_a_server_error(store_api, item_id):
    """The explicit examples: each operation with an id in its path, called with ids that
    break the id rule or look like URL tricks, percent-encoded as clients send them."""
    for result in SCHEMA.get_all_operations():
        operation = result.ok()
        names = [
            parameter.name
            for parameter in operation.path_parameters
            if parameter.name in ("item_id", "user_id")
        ]
        if not names:
            continue
        extra = (
            {"body": {"attributes": {"big": 2**64}}, "media_type": "application/json"}
            if operation.method == "put"
            else {}
        )
        case = operation.Case(
            # Sent as clients send ids: percent-encoded (schemathesis leaves these as given).
            path_parameters={name: quote(item_id, safe="") for name in names},
            query={"category": "\x00"} if operation.method == "get" else None,
            **extra,
        )
        response = case.call(**store_api)
        assert response.status_code < 500, (operation.label, item_id, response.text)
        if response.headers.get("Content-Type", [""])[0].startswith("application/json"):
            orjson.loads(response.content)
