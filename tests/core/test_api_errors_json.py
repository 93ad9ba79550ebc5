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
