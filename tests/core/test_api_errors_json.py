"""Every /api/ answer is the JSON error body, unknown paths and wrong methods included
(issue 13: they answered Django's HTML pages)."""

import pytest

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
