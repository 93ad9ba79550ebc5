"""A body sent with `Transfer-Encoding: chunked` and no Content-Length (granian hands it so) is
read at the WSGI entry (apps.core.wsgi.read_chunked_body), up to the upload limit: every view
sees it, where Django alone read an empty body (a PUT stored an item's defaults, or reset an
existing item). Requests go through the production application, config.wsgi.application,
built as a WSGI server builds them."""

from __future__ import annotations

import importlib
import io
from decimal import Decimal

import orjson
import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test import RequestFactory, override_settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog.models import Event, Item, Shopper
from apps.core.wsgi import read_chunked_body
from apps.merchandising.models import Placement
from apps.tenants.selectors import store_domain
from tests.factories import ItemFactory, api_key_for

pytestmark = pytest.mark.django_db


class Trickle(io.RawIOBase):
    """A server's input stream that hands out at most `step` bytes a read, as a chunked body
    arrives."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self.data = data
        self.step = step
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        size = self.step if size is None or size < 0 else min(size, self.step)
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk


@pytest.fixture
def application(monkeypatch):
    monkeypatch.setenv("SHELFSENSE_PROCESS", "web")
    return importlib.import_module("config.wsgi").application


@pytest.fixture(autouse=True)
def _connections_kept_open():
    """The handler's request signals would close the connection holding the test's
    transaction: Django's test client disconnects them the same way."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def key(alpha):
    _, plaintext = api_key_for(alpha, scopes=("ingest", "manage"))
    connection.set_schema_to_public()
    return plaintext


def chunked(tenant, key: str, method: str, path: str, body: bytes, step: int = 7) -> dict:
    """The environ of a chunked request: the header, no CONTENT_LENGTH, the body streamed."""
    environ = (
        RequestFactory()
        .generic(
            method,
            path,
            data=body,
            content_type="application/json",
            HTTP_HOST=store_domain(tenant.slug),
            HTTP_AUTHORIZATION=f"Bearer {key}",
            HTTP_TRANSFER_ENCODING="chunked",
        )
        .environ
    )
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input"] = Trickle(body, step)
    return environ


def send(application, environ: dict) -> tuple[int, dict]:
    """(status, JSON body) of the application's answer, as a WSGI server collects it."""
    started: list[str] = []
    result = application(
        dict(environ), lambda status, headers, exc_info=None: started.append(status)
    )
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return int(started[0].split()[0]), orjson.loads(body) if body else {}


def items(tenant) -> dict[str, tuple]:
    with tenant_context(tenant):
        return {
            item.item_id: (item.title, item.price)
            for item in Item.objects.exclude(item_id=f"{tenant.slug}-only")
        }


def test_a_chunked_put_stores_the_item_it_sends(application, alpha, key):
    body = orjson.dumps({"title": "Hello", "price": "5.00"})

    status, answer = send(application, chunked(alpha, key, "PUT", "/api/v1/items/chunky", body))

    assert status == 201
    assert (answer["item_id"], answer["title"], answer["price"]) == ("chunky", "Hello", "5.00")
    assert items(alpha) == {"chunky": ("Hello", Decimal("5.00"))}


def test_a_chunked_put_replaces_an_existing_item_with_what_it_sends(application, alpha, key):
    with tenant_context(alpha):
        ItemFactory(item_id="mug", title="Old mug", price=Decimal("9.00"))
    body = orjson.dumps({"title": "New mug", "price": "12.50"})

    status, _ = send(application, chunked(alpha, key, "PUT", "/api/v1/items/mug", body))

    assert status == 200
    assert items(alpha) == {"mug": ("New mug", Decimal("12.50"))}


def test_a_chunked_shopper_put_sets_its_attributes(application, alpha, key):
    body = orjson.dumps({"attributes": {"tier": "gold"}})

    status, answer = send(application, chunked(alpha, key, "PUT", "/api/v1/users/u-1", body))

    assert status == 201
    assert answer["attributes"] == {"tier": "gold"}
    with tenant_context(alpha):
        assert Shopper.objects.get(user_id="u-1").attributes == {"tier": "gold"}


def test_a_chunked_items_bulk_stores_every_row(application, alpha, key):
    body = orjson.dumps({"items": [{"item_id": "a", "title": "A"}, {"item_id": "b"}]})

    status, _ = send(application, chunked(alpha, key, "POST", "/api/v1/items/bulk", body))

    assert status == 200
    assert set(items(alpha)) == {"a", "b"}


def test_a_chunked_placement_is_created(application, alpha, key):
    body = orjson.dumps({"name": "home", "scenario": "personal", "rules": {"exclude": ["x"]}})

    status, answer = send(application, chunked(alpha, key, "POST", "/api/v1/placements/", body))

    assert status == 201
    assert (answer["name"], answer["rules"]) == ("home", {"exclude": ["x"]})
    with tenant_context(alpha):
        assert list(Placement.objects.values_list("name", flat=True)) == ["home"]


def test_chunked_events_are_stored(application, alpha, key):
    row = {
        "event_id": "e1",
        "user_id": "u1",
        "item_id": "alpha-only",
        "type": "view",
        "timestamp": timezone.now().isoformat(),
    }
    body = orjson.dumps([row])

    status, answer = send(
        application, chunked(alpha, key, "POST", "/api/v1/events/bulk", body, step=4096)
    )

    assert status == 202, answer
    assert answer["accepted"] == 1
    with tenant_context(alpha):
        assert list(Event.objects.values_list("event_id", flat=True)) == ["e1"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/api/v1/items/big", {"title": "x", "description": "d" * 2000}),
        ("POST", "/api/v1/items/bulk", [{"item_id": "big", "description": "d" * 2000}]),
        ("POST", "/api/v1/placements/", {"name": "big", "scenario": "personal", "x": "d" * 2000}),
        ("POST", "/api/v1/events/bulk", [{"item_id": "big", "user_id": "d" * 2000}]),
    ],
)
def test_a_chunked_body_over_the_upload_limit_is_413_and_nothing_is_stored(
    application, alpha, key, method, path, body
):
    data = orjson.dumps(body)
    environ = chunked(alpha, key, method, path, data, step=100)

    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000):
        status, answer = send(application, environ)

    assert status == 413
    assert answer == {
        "error": {
            "code": "too_large",
            "message": "The request body is larger than 1,000 bytes.",
            "fields": {},
        }
    }
    # Read one byte past the limit, not to the end.
    assert len(environ["wsgi.input"].data) == len(data) - 1001
    assert items(alpha) == {}
    with tenant_context(alpha):
        assert (Event.objects.count(), Placement.objects.count()) == (0, 0)


def test_the_wrapper_reads_one_byte_past_the_limit_and_no_more():
    seen = {}

    def app(environ, start_response):
        seen["length"] = environ["CONTENT_LENGTH"]
        seen["body"] = environ["wsgi.input"].read()
        return [b""]

    stream = Trickle(b"x" * 50, step=3)
    environ = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": stream}

    read_chunked_body(app, body_limit=lambda: 10)(environ, None)

    assert seen == {"length": "11", "body": b"x" * 11}
    assert stream.data == b"x" * 39


@pytest.mark.parametrize(
    "environ",
    [
        {},  # no Transfer-Encoding: the hot path of GETs
        {"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": "4"},
        {"HTTP_TRANSFER_ENCODING": "gzip"},
    ],
)
def test_other_requests_pass_untouched(environ):
    stream = Trickle(b"body")
    environ = {**environ, "wsgi.input": stream}
    before = dict(environ)
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        return [b""]

    read_chunked_body(app, body_limit=lambda: 10)(environ, None)

    assert seen == before
    assert seen["wsgi.input"] is stream
    assert stream.reads == 0
