"""Session, authentication and messages middleware step aside for cookieless /api/ calls
(integrations) and act as usual everywhere else."""

import pytest
from django.test import RequestFactory

from apps.core.middleware import is_cookieless_api_request
from tests.factories import MembershipFactory, UserFactory, api_key_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "cookie", "expected"),
    [
        ("/api/v1/recommendations/trending", None, True),
        ("/api/v1/recommendations/trending", "sessionid=abc", False),
        ("/api-keys/", None, False),
        ("/", None, False),
    ],
)
def test_only_cookieless_api_paths_qualify(path, cookie, expected):
    headers = {"HTTP_COOKIE": cookie} if cookie else {}

    request = RequestFactory().get(path, **headers)

    assert is_cookieless_api_request(request) is expected


def test_an_integration_call_gets_no_session_cookie_and_its_answer(alpha, store_client):
    _, key = api_key_for(alpha, scopes=["recommend"])

    response = store_client(alpha).get(
        "/api/v1/recommendations/trending?k=3", HTTP_AUTHORIZATION=f"Bearer {key}"
    )

    assert response.status_code == 200
    assert response.json()["strategy"]
    assert "sessionid" not in response.cookies
    assert "Cookie" not in response.get("Vary", "")


def test_a_cookieless_api_call_without_a_key_is_refused_as_json(alpha, store_client):
    response = store_client(alpha).get("/api/v1/api-keys/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_bearer_header_on_a_page_does_not_skip_the_sign_in(alpha, store_client):
    _, key = api_key_for(alpha, scopes=["recommend"])

    response = store_client(alpha).get("/", HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code == 302
    assert response["Location"].startswith("http://localhost/stores/alpha/go/")


def test_an_api_call_with_a_members_session_still_uses_it(alpha, store_client):
    user = UserFactory()
    MembershipFactory(user=user, tenant=alpha, role="owner")
    client = store_client(alpha)
    client.force_login(user)

    response = client.get("/api/v1/api-keys/")

    assert response.status_code == 200
