"""API keys: shown once, stored hashed, usable only on their own store's host, revocable,
expiring, scoped and throttled per key; no database query per authenticated request."""

import copy
import hashlib
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.apikeys import cache
from apps.apikeys.models import ApiKey
from apps.apikeys.services import api_key_revoke
from apps.audit.models import AuditEvent
from apps.core import redis_batch
from tests.factories import api_key_for

pytestmark = pytest.mark.django_db

WHOAMI = "/api/v1/auth/key/"


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "fields": {}}}


def _key_client(store_client, tenant, key: str):
    return store_client(tenant, HTTP_AUTHORIZATION=f"Bearer {key}")


def test_the_key_is_stored_only_as_its_hash_with_a_visible_prefix(alpha):
    api_key, plaintext = api_key_for(alpha, name="Shop sync", scopes=["recommend", "ingest"])

    assert plaintext.startswith(f"ss_live_{api_key.prefix}_")
    assert len(api_key.prefix) == 12
    with tenant_context(alpha):
        row = ApiKey.objects.values().get(pk=api_key.pk)
    assert row["secret_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()
    secret = plaintext.rsplit("_", 1)[-1]
    assert all(secret not in str(value) for value in row.values())
    assert row["scopes"] == ["ingest", "recommend"]


def test_a_key_authenticates_on_its_own_store(alpha, store_client):
    api_key, plaintext = api_key_for(alpha, name="Shop sync", scopes=["recommend"])

    response = _key_client(store_client, alpha, plaintext).get(WHOAMI)

    assert response.status_code == 200
    assert response.json() == {
        "store": "alpha",
        "name": "Shop sync",
        "prefix": api_key.prefix,
        "scopes": ["recommend"],
        "expires_at": None,
    }


def test_a_key_of_store_a_on_store_b_host_is_401(alpha, beta, store_client):
    _, plaintext = api_key_for(alpha)

    response = _key_client(store_client, beta, plaintext).get(WHOAMI)

    assert response.status_code == 401
    assert response.json() == _error("invalid_api_key", "Invalid API key.")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_key_on_the_public_host_is_refused(alpha, public_client):
    _, plaintext = api_key_for(alpha)

    response = public_client.get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {plaintext}")

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("header", "code", "message"),
    [
        (None, "not_authenticated", "Authentication credentials were not provided."),
        ("Bearer nonsense", "invalid_api_key", "Malformed API key."),
        ("Bearer ss_live_0123456789ab_wrong", "invalid_api_key", "Invalid API key."),
    ],
)
def test_missing_malformed_or_unknown_keys_are_401(alpha, store_client, header, code, message):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}

    response = store_client(alpha, **extra).get(WHOAMI)

    assert response.status_code == 401
    assert response.json() == _error(code, message)


def test_a_right_prefix_with_a_wrong_secret_is_401(alpha, store_client):
    api_key, _ = api_key_for(alpha)

    forged = f"ss_live_{api_key.prefix}_{'x' * 43}"
    response = _key_client(store_client, alpha, forged).get(WHOAMI)

    assert response.status_code == 401
    assert response.json() == _error("invalid_api_key", "Invalid API key.")


def test_a_revoked_key_is_401(alpha, store_client, django_capture_on_commit_callbacks):
    api_key, plaintext = api_key_for(alpha)
    client = _key_client(store_client, alpha, plaintext)
    assert client.get(WHOAMI).status_code == 200

    with tenant_context(alpha), django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(api_key=api_key)
    response = client.get(WHOAMI)

    assert response.status_code == 401
    assert response.json() == _error("api_key_revoked", "This API key has been revoked.")


def test_a_revocation_reaches_a_process_that_still_caches_the_key(
    alpha, store_client, django_capture_on_commit_callbacks
):
    api_key, plaintext = api_key_for(alpha)
    with tenant_context(alpha), django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(api_key=api_key)
    # Another process revoked nothing locally: its cache still holds the active row.
    stale = copy.copy(api_key)
    stale.revoked_at = None
    cache.local_put("store_alpha", api_key.prefix, stale)

    response = _key_client(store_client, alpha, plaintext).get(WHOAMI)

    assert response.status_code == 401
    assert response.json() == _error("api_key_revoked", "This API key has been revoked.")


def test_an_expired_key_is_401(alpha, store_client):
    api_key, plaintext = api_key_for(alpha, expires_at=timezone.now() + timedelta(days=1))
    with tenant_context(alpha):
        ApiKey.objects.filter(pk=api_key.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    cache.local_forget("store_alpha", api_key.prefix)

    response = _key_client(store_client, alpha, plaintext).get(WHOAMI)

    assert response.status_code == 401
    assert response.json() == _error("api_key_expired", "This API key has expired.")


def test_a_key_without_the_required_scope_is_403(alpha, store_client):
    _, plaintext = api_key_for(alpha, scopes=["ingest"])

    response = _key_client(store_client, alpha, plaintext).get("/api/v1/api-keys/")

    assert response.status_code == 403
    assert response.json() == _error("missing_scope", "This API key lacks the scope: manage.")


def test_a_key_with_the_required_scope_is_served(alpha, store_client):
    api_key, plaintext = api_key_for(alpha, name="Ops", scopes=["manage"])

    response = _key_client(store_client, alpha, plaintext).get("/api/v1/api-keys/")

    assert response.status_code == 200
    assert [row["prefix"] for row in response.json()["results"]] == [api_key.prefix]


def test_each_key_is_throttled_on_its_own_with_retry_after(alpha, store_client, settings):
    settings.API_KEY_RATE_LIMIT = "3/min"
    _, first = api_key_for(alpha)
    _, second = api_key_for(alpha)
    client = _key_client(store_client, alpha, first)

    statuses = [client.get(WHOAMI).status_code for _ in range(3)]
    throttled = client.get(WHOAMI)
    other_key = _key_client(store_client, alpha, second).get(WHOAMI)

    assert statuses == [200, 200, 200]
    assert throttled.status_code == 429
    retry_after = int(throttled["Retry-After"])
    assert 1 <= retry_after <= 60
    body = throttled.json()["error"]
    assert body["code"] == "throttled"
    assert body["retry_after"] == retry_after
    assert body["message"].startswith("Rate limit of this API key exceeded; retry in ")
    assert other_key.status_code == 200


def test_authentication_queries_nothing_once_the_key_is_cached(
    alpha, store_client, django_assert_num_queries
):
    _, plaintext = api_key_for(alpha)
    client = _key_client(store_client, alpha, plaintext)
    client.get(WHOAMI)

    with django_assert_num_queries(0):
        response = client.get(WHOAMI)

    assert response.status_code == 200


def test_last_used_at_is_written_once_a_minute_not_per_request(alpha, store_client):
    api_key, plaintext = api_key_for(alpha)
    client = _key_client(store_client, alpha, plaintext)

    client.get(WHOAMI)
    with tenant_context(alpha):
        first_use = ApiKey.objects.get(pk=api_key.pk).last_used_at
    client.get(WHOAMI)
    client.get(WHOAMI)
    with tenant_context(alpha):
        later = ApiKey.objects.get(pk=api_key.pk).last_used_at

    assert first_use is not None
    assert timezone.now() - first_use < timedelta(seconds=10)
    assert later == first_use


def test_a_process_asks_for_the_last_used_refresh_once_a_minute_not_per_request(
    alpha, store_client, monkeypatch
):
    # given a key used once (its refresh claimed), and the gate's Redis commands recorded
    _, plaintext = api_key_for(alpha)
    client = _key_client(store_client, alpha, plaintext)
    client.get(WHOAMI)
    sent = []
    original = redis_batch.execute_commands
    monkeypatch.setattr(
        redis_batch,
        "execute_commands",
        lambda commands: sent.extend(commands) or original(commands),
    )

    # when it is used again within the minute
    assert client.get(WHOAMI).status_code == 200

    # then the revocation is checked (and the rate window counted), but the refresh is not
    # claimed again
    names = [command[0] for command in sent]
    assert "EXISTS" in names
    assert "SET" not in names


def test_create_api_key_command_prints_the_key_once_and_it_works(alpha, store_client, capsys):
    call_command("create_api_key", tenant="alpha", name="CLI", scopes="ingest,recommend")

    lines = capsys.readouterr().out.splitlines()
    key = lines[-1].removeprefix("Key (shown once): ")
    assert lines[0].startswith("Created API key 'CLI' (")
    assert lines[1] == "Scopes: ingest,recommend"
    assert _key_client(store_client, alpha, key).get(WHOAMI).status_code == 200
    with tenant_context(alpha):
        event = AuditEvent.objects.get(action="api_key.created")
    assert event.actor_type == "system"
    assert event.actor_label == "command:create_api_key"
    assert event.details["name"] == "CLI"
