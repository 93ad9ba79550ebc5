import pytest
from django.db import OperationalError
from django.test import Client
from django.urls import path

from apps.core.views import server_error


def _database_down(request):
    raise OperationalError("connection failed: FATAL: sorry, too many clients already")


def _bug(request):
    raise ZeroDivisionError


urlpatterns = [
    path("api/v1/down", _database_down),
    path("api/v1/bug", _bug),
    path("page/down", _database_down),
]
handler500 = server_error

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@pytest.fixture
def raw_client():
    return Client(raise_request_exception=False, HTTP_HOST="localhost")


def test_database_unavailable_is_a_json_503_for_api_clients(raw_client, settings):
    settings.PUBLIC_SCHEMA_URLCONF = __name__

    response = raw_client.get("/api/v1/down")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "error": {
            "code": "service_unavailable",
            "message": "The service is temporarily unavailable; retry shortly.",
            "fields": {},
        }
    }


def test_an_unexpected_error_is_a_json_500_for_api_clients(raw_client, settings):
    settings.PUBLIC_SCHEMA_URLCONF = __name__

    response = raw_client.get("/api/v1/bug")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"


def test_pages_get_an_html_error_page(raw_client, settings):
    settings.PUBLIC_SCHEMA_URLCONF = __name__

    response = raw_client.get("/page/down")

    assert response.status_code == 503
    assert "temporarily unavailable" in response.content.decode()
