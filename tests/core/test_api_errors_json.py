"""Every /api/ answer is the JSON error body, unknown paths and wrong methods included
(issue 13: they answered Django's HTML pages)."""

import pytest
from django.test import Client

from tests.factories import api_key_for

pytestmark = pytest.mark.django_db


def _body(code, message):
    return {"error": {"code": code, "message": message, "fields": {}}}


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v2/items/", "/api/"])
def test_an_unknown_api_path_is_a_json_404(alpha, store_client, path):
    response = store_client(alpha).get(path, HTTP_ACCEPT="text/html")

    assert response.status_code == 404
    assert response.json() == _body("not_found", f"Nothing is served at {path}.")


@pytest.mark.parametrize("host", ["store", "platform"])
def test_an_unknown_api_path_is_a_json_404_with_debug_on(
    alpha, store_client, public_client, settings, host
):
    # `make run` serves with DEBUG on, where Django renders its technical HTML 404 page.
    settings.DEBUG = True
    client = store_client(alpha) if host == "store" else public_client

    response = client.get("/api/v1/nope", HTTP_ACCEPT="text/html")

    assert response.status_code == 404
    assert response.json() == _body("not_found", "Nothing is served at /api/v1/nope.")


def test_an_api_path_missing_its_slash_is_still_redirected(alpha, store_client, settings):
    settings.DEBUG = True

    response = store_client(alpha).get("/api/docs")

    assert response.status_code == 301
    assert response["Location"] == "/api/docs/"


def test_an_unknown_api_path_of_the_platform_is_a_json_404(public_client):
    response = public_client.get("/api/v1/items/")

    assert response.status_code == 404
    assert response.json() == _body("not_found", "Nothing is served at /api/v1/items/.")


def test_pages_still_get_the_html_404(public_client):
    response = public_client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/items/sku-1"),
        ("delete", "/api/v1/recommendations/trending"),
        ("post", "/api/v1/users/u1/events"),
    ],
)
def test_a_wrong_method_is_a_json_405(alpha, store_client, method, path):
    _, key = api_key_for(alpha, scopes=("ingest", "recommend"))
    client = store_client(alpha, HTTP_AUTHORIZATION=f"Bearer {key}")

    response = getattr(client, method)(path)

    assert response.status_code == 405
    assert response.json() == _body("method_not_allowed", f'Method "{method.upper()}" not allowed.')


# --- a write to an /api/ path missing its trailing slash ----------------------------------------
# Django's APPEND_SLASH redirected it (301, the body dropped) or, with DEBUG on, raised
# RuntimeError (500). It is the 404 it is, naming the path with the slash.
@pytest.mark.parametrize("debug", [False, True], ids=["debug off", "debug on"])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/items",
        "/api/v1/placements",
        "/api/v1/experiments",
        "/api/v1/api-keys",
        "/api/v1/auth/key",
        "/api/v1/api-keys/1/revoke",
    ],
)
def test_a_write_without_the_trailing_slash_is_a_json_404_naming_the_path(
    alpha, store_client, settings, debug, method, path
):
    settings.DEBUG = debug
    _, key = api_key_for(alpha, scopes=("ingest", "recommend", "manage"))
    client = store_client(alpha, HTTP_AUTHORIZATION=f"Bearer {key}")

    response = getattr(client, method)(path, data=b'{"name": "x"}', content_type="application/json")

    assert response.status_code == 404
    assert response.json() == _body(
        "not_found", f"Nothing is served at {path}; did you mean {path}/ (with the trailing slash)?"
    )


@pytest.mark.parametrize("method", ["get", "head"])
def test_a_read_without_the_trailing_slash_is_still_redirected(alpha, store_client, method):
    response = getattr(store_client(alpha), method)("/api/v1/items")

    assert response.status_code == 301
    assert response["Location"] == "/api/v1/items/"


def test_a_write_to_an_unknown_path_without_a_slash_names_only_the_path(alpha, store_client):
    response = store_client(alpha).post("/api/v1/nope")

    assert response.status_code == 404
    assert response.json() == _body("not_found", "Nothing is served at /api/v1/nope.")


def test_a_page_write_without_the_trailing_slash_is_still_redirected(alpha, member_client):
    client, _ = member_client(alpha)

    response = client.post("/placements/new")

    assert response.status_code == 301
    assert response["Location"] == "/placements/new/"


# --- 405 of plain views, refused hosts ------------------------------------------------------------
@pytest.mark.parametrize("platform", ["woocommerce", "shopify"])
@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_a_wrong_method_on_a_webhook_is_a_json_405_with_allow(
    alpha, store_client, platform, method
):
    response = getattr(store_client(alpha), method)(f"/api/v1/connectors/{platform}/webhook")

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json() == _body("method_not_allowed", f'Method "{method.upper()}" not allowed.')


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("tenant_template.localhost", "No store is served at tenant_template.localhost."),
        ("demo.localhost@other.localhost", "No store is served at demo.localhost@other.localhost."),
        ("alpha.localhost:abc", "No store is served at alpha.localhost:abc."),
        ("[::1]", "No store is served at [::1]."),
        ("elsewhere.example", "No store is served at elsewhere.example."),
        ("", "A Host header is required."),
    ],
)
def test_a_host_django_refuses_is_a_json_404_on_api_paths(alpha, host, message):
    _, key = api_key_for(alpha)
    client = Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {key}")

    response = client.get("/api/v1/items/")
    written = client.post("/api/v1/events/bulk", data=b"[]", content_type="application/json")

    assert [response.status_code, written.status_code] == [404, 404]
    assert response.json() == written.json() == _body("store_not_found", message)


def test_a_host_django_refuses_is_still_a_plain_404_on_pages():
    response = Client(HTTP_HOST="tenant_template.localhost").get("/")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")
