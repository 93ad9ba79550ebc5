"""The serving endpoints skip DRF's per-request machinery on GET (apps.recommendations.apis.
RecommendApi): every refusal must still be the answer DRF gives, compared here against the
API-key endpoint `/api/v1/auth/key/`, which goes through APIView.dispatch."""

import pytest
from django_tenants.utils import tenant_context

from apps.apikeys.services import api_key_revoke
from tests.factories import api_key_for

pytestmark = pytest.mark.django_db

DRF_DISPATCHED = "/api/v1/auth/key/"
SERVING = (
    "/api/v1/recommendations/users/7",
    "/api/v1/recommendations/users/7/buy-again",
    "/api/v1/recommendations/items/i1/similar",
    "/api/v1/recommendations/items/i1/bought-together",
    "/api/v1/recommendations/trending",
)
HEADERS = ("Content-Type", "WWW-Authenticate", "Retry-After")


def _answer(response) -> tuple:
    return response.status_code, response.json(), {h: response.get(h) for h in HEADERS}


def _client(store_client, tenant, key: str | None = None):
    if key is None:
        return store_client(tenant)
    return store_client(tenant, HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.mark.parametrize("path", SERVING)
def test_missing_malformed_unknown_and_revoked_keys_get_drfs_401(alpha, beta, store_client, path):
    api_key, revoked = api_key_for(alpha, scopes=("recommend",))
    with tenant_context(alpha):
        api_key_revoke(api_key=api_key, actor_label="test")
    _, other_store_key = api_key_for(beta)

    for key in (None, "not-a-key", other_store_key, revoked):
        served = _client(store_client, alpha, key).get(path)
        expected = _client(store_client, alpha, key).get(DRF_DISPATCHED)

        assert served.status_code == 401, (path, key)
        assert _answer(served) == _answer(expected), (path, key)
        assert served["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("path", SERVING)
def test_a_key_without_the_recommend_scope_gets_403_missing_scope(alpha, store_client, path):
    _, ingest_only = api_key_for(alpha, scopes=("ingest",))

    response = _client(store_client, alpha, ingest_only).get(path)

    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "missing_scope",
            "message": "This API key lacks the scope: recommend.",
            "fields": {},
        }
    }


def test_over_the_rate_limit_gets_drfs_429_with_retry_after(alpha, store_client, settings):
    settings.API_KEY_RATE_LIMIT = "2/min"
    _, served_key = api_key_for(alpha, scopes=("recommend",))
    _, drf_key = api_key_for(alpha, scopes=("recommend",))
    served_client = _client(store_client, alpha, served_key)
    drf_client = _client(store_client, alpha, drf_key)

    assert [served_client.get(SERVING[0]).status_code for _ in range(2)] == [200, 200]
    for _ in range(2):
        drf_client.get(DRF_DISPATCHED)
    served, expected = served_client.get(SERVING[0]), drf_client.get(DRF_DISPATCHED)

    assert served.status_code == 429
    assert int(served["Retry-After"]) >= 1
    # Both windows end at the same second, unless the minute turned between the two requests.
    assert served.json()["error"]["code"] == expected.json()["error"]["code"] == "throttled"
    assert set(served.json()["error"]) == set(expected.json()["error"])


def test_bad_input_after_authentication_names_the_field(alpha, store_client):
    _, key = api_key_for(alpha, scopes=("recommend",))
    client = _client(store_client, alpha, key)

    for query, field in (("k=0", "k"), ("k=x", "k"), ("exclude_seen=maybe", "exclude_seen")):
        response = client.get(f"{SERVING[0]}?{query}")

        assert response.status_code == 400, query
        assert response["Content-Type"] == "application/json"
        assert list(response.json()["error"]["fields"]) == [field]


def test_other_methods_are_answered_by_drf(alpha, store_client):
    _, key = api_key_for(alpha, scopes=("recommend",))
    client = _client(store_client, alpha, key)

    response = client.post(SERVING[0], data={}, content_type="application/json")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert client.head(SERVING[0]).status_code == 200


def test_the_serving_endpoints_stay_in_the_openapi_schema(alpha, store_client):
    paths = store_client(alpha).get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    assert {
        "/api/v1/recommendations/users/{user_id}",
        "/api/v1/recommendations/users/{user_id}/buy-again",
        "/api/v1/recommendations/items/{item_id}/similar",
        "/api/v1/recommendations/items/{item_id}/bought-together",
        "/api/v1/recommendations/trending",
    } <= set(paths)
    assert "get" in paths["/api/v1/recommendations/users/{user_id}"]
