"""The id rule (apps.core.ids) at every entry point, and hostile input that used to answer 500:
NUL bytes in paths and queries, paths that are not UTF-8, numbers JSON cannot carry back."""

import asyncio
import io
from contextlib import contextmanager
from urllib.parse import quote, unquote

import orjson
import pytest
from asgiref.sync import async_to_sync
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from django_tenants.utils import tenant_context

from apps.catalog.models import Event, Item, Shopper
from apps.core.wsgi import keep_path_bytes
from apps.recommendations import serving
from apps.tenants.selectors import store_domain
from config.asgi import application as asgi_application
from tests.factories import api_key_for, event_payload

pytestmark = pytest.mark.django_db

SHOPIFY_ID = "gid://shopify/Product/123"
PRINTABLE = "Must contain printable characters only (no control characters or line breaks)."


def _path(item_id: str) -> str:
    return quote(item_id, safe="")


def _put(client, path, body):
    return client.put(path, data=orjson.dumps(body), content_type="application/json")


def _post(client, path, body):
    return client.post(path, data=orjson.dumps(body), content_type="application/json")


def _invalid(field, message):
    return {
        "error": {
            "code": "invalid",
            "message": f"Invalid input in: {field}.",
            "fields": {field: [message]},
        }
    }


def _event(**fields):
    return event_payload(**({"event_id": None, "user_id": "u1", "item_id": "i1"} | fields))


# --- ids with "/" and other URL characters ------------------------------------------------------
def test_an_id_with_slashes_is_created_read_and_deleted_percent_encoded(alpha, api):
    client = api(alpha)
    path = f"/api/v1/items/{_path(SHOPIFY_ID)}"
    assert path == "/api/v1/items/gid%3A%2F%2Fshopify%2FProduct%2F123"

    created = _put(client, path, {"title": "Hat"})
    read = client.get(path)
    deleted = client.delete(path)
    after = client.get(path)

    assert created.status_code == 201
    assert read.status_code == 200
    assert read.json()["item_id"] == SHOPIFY_ID
    assert deleted.status_code == 204
    assert after.status_code == 404


@pytest.mark.parametrize("item_id", ["a/b", "a?b#c", "100%", "a%2Fb", "bulk", "x/", "/x", "é/ü"])
def test_ids_from_the_bulk_endpoint_are_reachable_by_their_encoded_path(alpha, api, item_id):
    client = api(alpha)

    stored = _post(client, "/api/v1/items/bulk", [{"item_id": item_id, "title": "T"}])
    read = client.get(f"/api/v1/items/{_path(item_id)}")
    deleted = client.delete(f"/api/v1/items/{_path(item_id)}")

    assert stored.json() == {"created": 1, "updated": 0, "errors": []}
    assert (read.status_code, read.json()["item_id"]) == (200, item_id)
    assert deleted.status_code == 204
    with tenant_context(alpha):
        assert Item.objects.get(item_id=item_id).is_hidden is True


def test_a_shopper_whose_id_ends_like_a_subresource_is_set_read_and_erased(alpha, api):
    client = api(alpha)
    _post(
        client,
        "/api/v1/events/bulk",
        [_event(user_id="x/events"), _event(user_id="x/export"), _event(user_id="x")],
    )

    set_profile = _put(client, "/api/v1/users/x%2Fevents", {"attributes": {"tier": "gold"}})
    events = client.get("/api/v1/users/x%2Fevents/events")
    export = client.get("/api/v1/users/x%2Fexport/export")
    erased = client.delete("/api/v1/users/x%2Fexport")

    assert set_profile.status_code == 200  # the events created the shopper
    assert set_profile.json()["user_id"] == "x/events"
    assert [row["user_id"] for row in events.json()["results"]] == ["x/events"]
    assert export.json()["events"][0]["user_id"] == "x/export"
    assert erased.status_code == 200
    assert erased.json()["erased"]["events"] == 1
    with tenant_context(alpha):
        assert sorted(Event.objects.values_list("user_id", flat=True)) == ["x", "x/events"]
        assert sorted(Shopper.objects.values_list("user_id", flat=True)) == ["x", "x/events"]


def test_an_id_is_stored_in_nfc_and_found_in_either_form(alpha, api):
    client = api(alpha)
    decomposed, composed = "cafe\u0301", "caf\u00e9"

    _post(client, "/api/v1/items/bulk", [{"item_id": decomposed, "title": "T"}])
    read = client.get(f"/api/v1/items/{_path(decomposed)}")

    assert read.json()["item_id"] == composed
    with tenant_context(alpha):
        assert list(Item.objects.filter(title="T").values_list("item_id", flat=True)) == [composed]


@pytest.mark.parametrize(
    ("item_id", "message"),
    [
        (
            "a\x07b",
            "Must contain printable characters only (no control characters or line breaks).",
        ),
        ("a\nb", "Must contain printable characters only (no control characters or line breaks)."),
        (
            "a\u2028b",
            "Must contain printable characters only (no control characters or line breaks).",
        ),
        (" a", "Must not start or end with whitespace."),
        ("a ", "Must not start or end with whitespace."),
        ("x" * 129, "At most 128 characters."),
        ("", "Must not be blank."),
        ("a\x00b", "Must not contain NUL characters."),
    ],
)
def test_ids_breaking_the_rule_are_refused_at_every_write_and_nothing_is_stored(
    alpha, api, item_id, message
):
    client = api(alpha)

    bulk = _post(client, "/api/v1/items/bulk", [{"item_id": item_id}])
    events = _post(
        client,
        "/api/v1/events/bulk",
        [
            _event(item_id=item_id),
            _event(user_id=item_id),
            _event(session_id=item_id),
            _event(type="purchase", order_id=item_id),
        ],
    )
    put_item = _put(client, f"/api/v1/items/{_path(item_id)}", {}) if item_id else None
    put_user = (
        _put(client, f"/api/v1/users/{_path(item_id)}", {"attributes": {}}) if item_id else None
    )

    assert bulk.json()["errors"] == [{"index": 0, "field": "item_id", "message": message}]
    assert events.json()["accepted"] == 0
    assert events.json()["errors"] == [
        {"index": 0, "field": "item_id", "message": message},
        {"index": 1, "field": "user_id", "message": message},
        {"index": 2, "field": "session_id", "message": message},
        {"index": 3, "field": "order_id", "message": message},
    ]
    if item_id:
        assert (put_item.status_code, put_item.json()["error"]["fields"]) == (
            400,
            {"item_id": [message]},
        )
        assert (put_user.status_code, put_user.json()) == (400, _invalid("user_id", message))
    with tenant_context(alpha):
        assert Item.objects.exclude(item_id="alpha-only").count() == 0
        assert Event.objects.count() == 0
        assert Shopper.objects.count() == 0


def test_dashboard_links_to_items_and_shoppers_with_slashes(alpha, api, member_client):
    client = api(alpha)
    _post(
        client,
        "/api/v1/events/bulk",
        [_event(user_id="gid://shopify/Customer/7", item_id=SHOPIFY_ID)],
    )
    _put(client, f"/api/v1/items/{_path(SHOPIFY_ID)}", {"title": "Hat"})
    page, _ = member_client(alpha, "analyst", raise_request_exception=False)

    catalog = page.get("/catalog/")
    item = page.get(f"/catalog/{SHOPIFY_ID}/")
    shoppers = page.get("/shoppers/")
    shopper = page.get("/shoppers/gid://shopify/Customer/7/")

    assert catalog.status_code == 200
    assert 'href="/catalog/gid://shopify/Product/123/"' in catalog.content.decode()
    assert item.status_code == 200
    assert item.context["item"].item_id == SHOPIFY_ID
    assert 'href="/shoppers/gid://shopify/Customer/7/"' in shoppers.content.decode()
    assert shopper.status_code == 200
    assert shopper.context["user_id"] == "gid://shopify/Customer/7"


# --- NUL bytes and paths that are not UTF-8 -----------------------------------------------------
NUL = "Must not contain NUL characters."


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("get", "/api/v1/items/a%00b", "item_id"),
        ("delete", "/api/v1/items/a%00b", "item_id"),
        ("put", "/api/v1/items/a%00b", "item_id"),
        ("get", "/api/v1/items/?category=%00", "category"),
        ("get", "/api/v1/users/a%00b/events", "user_id"),
        ("get", "/api/v1/users/a%00b/export", "user_id"),
        ("delete", "/api/v1/users/a%00b", "user_id"),
        ("put", "/api/v1/users/a%00b", "user_id"),
        ("get", "/api/v1/recommendations/users/a%00b", "user_id"),
        ("get", "/api/v1/recommendations/users/a%00b/buy-again", "user_id"),
        ("get", "/api/v1/recommendations/items/a%00b/similar", "item_id"),
        ("get", "/api/v1/recommendations/items/a%00b/bought-together", "item_id"),
        ("get", "/api/v1/recommendations/sessions/a%00b", "session_id"),
        ("get", "/api/v1/recommendations/trending?category=%00", "category"),
        ("get", "/api/v1/recommendations/users/u1?category=a%00", "category"),
        ("get", "/api/v1/items/%00", "item_id"),
    ],
)
def test_a_nul_byte_in_a_path_or_query_is_a_400_naming_the_field(alpha, api, method, path, field):
    client = api(alpha, scopes=("ingest", "recommend"))

    body = {"data": b"{}", "content_type": "application/json"} if method == "put" else {}
    response = getattr(client, method)(path, **body)

    assert response.status_code == 400
    assert response.json() == _invalid(field, NUL)
    with tenant_context(alpha):
        assert Item.objects.exclude(item_id="alpha-only").count() == 0
        assert Shopper.objects.count() == 0


def _wsgi_get(path_bytes: bytes, key: str) -> tuple[int, dict]:
    """GET through the WSGI application as a WSGI server calls it: PATH_INFO is the path's
    decoded bytes as latin-1 text (PEP 3333; granian does the same). The test client cannot
    show this: Django has already re-encoded the path when its middleware runs."""
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path_bytes.decode("latin-1"),
        "QUERY_STRING": "",
        "SERVER_NAME": "alpha.localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": store_domain("alpha"),
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    started = {}

    def start_response(status, headers, exc_info=None):
        started["status"] = int(status.split()[0])

    with _connections_kept_open():
        body = b"".join(keep_path_bytes(WSGIHandler())(environ, start_response))
    return started["status"], orjson.loads(body)


@contextmanager
def _connections_kept_open():
    """As the test client does: the request must not close the test's transaction."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)


def _asgi_get(raw_path: bytes, key: str) -> tuple[int, dict]:
    """GET through the project's ASGI application (config.asgi) as an ASGI server calls it:
    `raw_path` is the path's bytes as received (percent-encoded or not), `path` their decoding,
    where bytes that are not UTF-8 have become U+FFFD or Latin-1 letters, so only `raw_path`
    tells them apart from a valid id."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", store_domain("alpha").encode()),
            (b"authorization", f"Bearer {key}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    requests = [{"type": "http.request", "body": b"", "more_body": False}]
    sent = []

    async def receive():
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client stays connected until the response

    async def send(message):
        sent.append(message)

    # Called in this thread's async_to_sync (not asgiref's ApplicationCommunicator, which runs
    # the application in a fresh context): Django's sync code then runs in this thread, on the
    # test's database connection and transaction.
    with _connections_kept_open():
        async_to_sync(asgi_application)(scope, receive, send)
    start, *bodies = sent
    return start["status"], orjson.loads(b"".join(body["body"] for body in bodies))


def test_a_path_that_is_not_utf8_is_a_400_not_another_id(alpha, api):
    client = api(alpha)
    _put(client, "/api/v1/items/a%25FFb", {"title": "literal percent"})
    _, key = api_key_for(alpha, scopes=("ingest",))

    literal = _wsgi_get(b"/api/v1/items/a%FFb", key)
    raw_bytes = _wsgi_get(b"/api/v1/items/a\xffb", key)
    utf8 = _wsgi_get("/api/v1/items/a\u00ffb".encode(), key)

    assert (literal[0], literal[1]["item_id"]) == (200, "a%FFb")
    assert raw_bytes == (
        400,
        _invalid("item_id", "Must be valid UTF-8 (percent-encode the UTF-8 bytes of the id)."),
    )
    assert utf8 == (404, {"error": {"code": "not_found", "message": "No such item.", "fields": {}}})


def test_a_path_that_is_not_utf8_is_a_400_not_another_id_under_asgi(alpha, api):
    # Under ASGI the middleware reads scope["raw_path"], not the WSGI environ
    client = api(alpha)
    _put(client, "/api/v1/items/a%25FFb", {"title": "literal percent"})
    _, key = api_key_for(alpha, scopes=("ingest",))

    literal = _asgi_get(b"/api/v1/items/a%25FFb", key)
    not_utf8 = _asgi_get(b"/api/v1/items/a%FFb", key)
    raw_byte = _asgi_get(b"/api/v1/items/a\xffb", key)  # not percent-encoded by the client
    utf8 = _asgi_get(b"/api/v1/items/a%C3%BFb", key)

    assert (literal[0], literal[1]["item_id"]) == (200, "a%FFb")
    refused = (
        400,
        _invalid("item_id", "Must be valid UTF-8 (percent-encode the UTF-8 bytes of the id)."),
    )
    assert not_utf8 == refused
    assert raw_byte == refused
    assert utf8 == (404, {"error": {"code": "not_found", "message": "No such item.", "fields": {}}})


@pytest.mark.parametrize(
    "path",
    [
        "/catalog/a%00b/",
        "/shoppers/a%00b/",
        "/catalog/?q=%00",
        "/shoppers/?q=a%00",
        "/audit/?action=%00",
    ],
)
def test_dashboard_pages_answer_a_400_page_for_a_nul_byte(alpha, member_client, path):
    page, _ = member_client(alpha, "analyst", raise_request_exception=False)

    response = page.get(path)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert "Must not contain NUL characters." in response.content.decode()


def test_dashboard_detail_of_an_impossible_id_is_a_404_page(alpha, member_client):
    page, _ = member_client(alpha, "analyst", raise_request_exception=False)

    response = page.get(f"/catalog/{'x' * 200}/")

    assert response.status_code == 404


# --- numbers JSON cannot carry back -------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"18446744073709551616", "Numbers must be between -(2^63 - 1) and 2^63 - 1 (at size)."),
        (b"9223372036854775808", "Numbers must be between -(2^63 - 1) and 2^63 - 1 (at size)."),
        (b"-9223372036854775808", "Numbers must be between -(2^63 - 1) and 2^63 - 1 (at size)."),
        (b"1e300", "Numbers must be between -(2^63 - 1) and 2^63 - 1 (at size)."),
        (b'[1, {"w": 1e19}]', "Numbers must be between -(2^63 - 1) and 2^63 - 1 (at size[1].w)."),
    ],
)
def test_numbers_beyond_64_bits_in_attributes_are_refused_and_nothing_is_stored(
    alpha, api, raw, message
):
    client = api(alpha)
    attributes = b'{"attributes": {"size": ' + raw + b"}}"
    item = b'{"item_id": "big", "attributes": {"size": ' + raw + b"}}"

    shopper = client.put("/api/v1/users/u1", data=attributes, content_type="application/json")
    put_item = client.put("/api/v1/items/big", data=item, content_type="application/json")
    bulk = client.post(
        "/api/v1/items/bulk", data=b"[" + item + b"]", content_type="application/json"
    )

    assert (shopper.status_code, shopper.json()) == (400, _invalid("attributes", message))
    assert (put_item.status_code, put_item.json()["error"]["fields"]) == (
        400,
        {"attributes": [message]},
    )
    assert bulk.json()["errors"] == [{"index": 0, "field": "attributes", "message": message}]
    with tenant_context(alpha):
        assert Shopper.objects.count() == 0
        assert Item.objects.filter(item_id="big").exists() is False


def test_the_largest_64_bit_numbers_are_stored_and_read_back(alpha, api):
    client = api(alpha)
    attributes = {"max": 2**63 - 1, "min": -(2**63 - 1), "small": 1.5e-300}

    put = _put(client, "/api/v1/users/u1", {"attributes": attributes})
    export = client.get("/api/v1/users/u1/export")

    assert put.status_code == 201
    assert export.status_code == 200
    assert export.json()["profile"]["attributes"] == attributes


# --- the serving fast path's error handling -----------------------------------------------------
def test_an_unexpected_error_in_the_serving_fast_path_is_not_masked(alpha, monkeypatch, settings):
    """DRF re-raises an unexpected error through request.accepted_renderer when DEBUG is on;
    the fast path did not set it, so the original error became an AttributeError."""

    def broken(**kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(serving, "recommend_trending", broken)
    settings.DEBUG = True
    _, key = api_key_for(alpha, scopes=("recommend",))
    client = Client(HTTP_HOST=store_domain("alpha"), HTTP_AUTHORIZATION=f"Bearer {key}")

    with pytest.raises(ZeroDivisionError):
        client.get("/api/v1/recommendations/trending", HTTP_ACCEPT="text/csv;q=0.1,*/*;q=0")


def test_an_unexpected_error_in_the_fast_path_is_the_json_500_body(alpha, monkeypatch):
    monkeypatch.setattr(serving, "recommend_trending", lambda **kwargs: 1 / 0)
    _, key = api_key_for(alpha, scopes=("recommend",))
    client = Client(
        HTTP_HOST=store_domain("alpha"),
        HTTP_AUTHORIZATION=f"Bearer {key}",
        raise_request_exception=False,
    )

    response = client.get("/api/v1/recommendations/trending", HTTP_ACCEPT="text/html")

    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "server_error",
            "message": "Something went wrong on our side.",
            "fields": {},
        }
    }


# --- ids stored before the rule -----------------------------------------------------------------
def test_ids_report_lists_stored_ids_that_break_the_rule_and_they_stay_reachable(
    alpha, api, capsys
):
    legacy = {" padded": "Must not start or end with whitespace.", "tab\there": PRINTABLE}
    with tenant_context(alpha):
        for item_id in [*legacy, "cafe\u0301", "fine/id"]:
            Item.objects.create(item_id=item_id, title="legacy")
    client = api(alpha)

    with pytest.raises(SystemExit) as exited:
        call_command("ids_report", "--tenant", "alpha")
    reads = [client.get(f"/api/v1/items/{_path(item_id)}") for item_id in legacy]

    assert exited.value.code == 1
    assert capsys.readouterr().out.splitlines() == [
        "alpha\titem\t' padded'\tMust not start or end with whitespace.",
        "alpha\titem\t'cafe\u0301'\tNot in Unicode NFC form.",
        f"alpha\titem\t'tab\\there'\t{PRINTABLE}",
        "3 stored id(s) break the id rule.",
    ]
    assert [(r.status_code, r.json()["item_id"]) for r in reads] == [
        (200, " padded"),
        (200, "tab\there"),
    ]
