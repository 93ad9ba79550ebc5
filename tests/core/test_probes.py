import pytest

pytestmark = pytest.mark.django_db


def test_healthz_answers_on_any_host(client):
    response = client.get("/healthz", HTTP_HOST="10.1.2.3")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_ok_when_dependencies_answer(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_names_redis_when_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert list(body["failed"]) == ["redis"]
    assert "ConnectionError" in body["failed"]["redis"]


def test_readyz_names_the_broker_when_unreachable(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    response = client.get("/readyz")

    assert response.status_code == 503
    assert list(response.json()["failed"]) == ["celery_broker"]


def _sample(text: str, name: str, labels: str) -> float:
    prefix = f"{name}{{{labels}}} "
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def test_metrics_need_the_bearer_token(client):
    denied = client.get("/metrics", HTTP_HOST="alpha.localhost")
    allowed = client.get("/metrics", HTTP_AUTHORIZATION="Bearer test-metrics-token")

    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == "not_authenticated"
    assert allowed.status_code == 200
    assert b"django_db_new_connections_total" in allowed.content


def test_requests_are_counted_by_method_area_and_status(client, alpha, store_client):
    def scrape() -> str:
        return client.get("/metrics", HTTP_AUTHORIZATION="Bearer test-metrics-token").text

    labels = 'area="api",method="GET",status="401"'
    before = _sample(scrape(), "shelfsense_http_requests_total", labels)

    store_client(alpha).get("/api/v1/items/")
    store_client(alpha).generic("BREW", "/api/v1/items/")

    after = scrape()
    assert _sample(after, "shelfsense_http_requests_total", labels) == before + 1
    assert 'method="other"' in after
    assert 'shelfsense_http_request_duration_seconds_count{area="api"}' in after
