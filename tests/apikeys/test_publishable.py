"""Publishable keys (`ss_pub_…`, the browser SDK): created with allowed origins, stored hashed;
they track and recommend for an anonymous session only, act for a known shopper only with a
user token the store's backend signs, only from their origins (CORS), and within per-key and
per-address rate windows."""

from __future__ import annotations

import hashlib
import io
import itertools
import time
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import tenant_context

from apps.apikeys import publishable_cache
from apps.apikeys.models import ApiKey, IdentitySecret
from apps.apikeys.publishable import USER_TOKEN_MAX_SECONDS, user_token_sign
from apps.apikeys.services import identity_secret_rotate, publishable_key_create
from apps.audit.models import AuditEvent
from apps.catalog.models import Event, Item
from apps.catalog.services import events_ingest
from apps.core import pii
from apps.core.cache import redis_client
from apps.core.errors import ApplicationError
from tests.factories import api_key_for

pytestmark = pytest.mark.django_db

SHOP = "https://shop.example"
EVENTS = "/api/v1/events/bulk"
TRENDING = "/api/v1/recommendations/trending"
_addresses = itertools.count(1)


@pytest.fixture(autouse=True)
def _no_cached_rows_of_earlier_tests(alpha, beta):
    """Each test's rows are rolled back, but this process's caches of them would live on."""
    for tenant in (alpha, beta):
        publishable_cache.origins_forget(tenant.schema_name)
        publishable_cache.identity_secret_forget(tenant.schema_name)


@pytest.fixture
def publishable(django_capture_on_commit_callbacks):
    """`publishable(tenant, origins=[SHOP])` → plaintext key, created through the service with
    its commit hooks run (they drop the process's cached origins)."""

    def make(tenant, origins=(SHOP,), name="Storefront"):
        with tenant_context(tenant), django_capture_on_commit_callbacks(execute=True):
            return publishable_key_create(name=name, allowed_origins=list(origins))[1]

    return make


@pytest.fixture
def identity_secret(django_capture_on_commit_callbacks):
    def make(tenant) -> str:
        with tenant_context(tenant), django_capture_on_commit_callbacks(execute=True):
            return identity_secret_rotate()

    return make


@pytest.fixture
def browser(store_client):
    """`browser(tenant, key, origin=SHOP, token=None)` → a client calling as a browser on a
    storefront would: the key, the page's Origin, and its own client address (so the
    per-address windows of different tests never meet)."""

    def make(tenant, key, origin=SHOP, token=None):
        headers = {
            "HTTP_AUTHORIZATION": f"Bearer {key}",
            "REMOTE_ADDR": f"10.7.0.{next(_addresses) % 250}",
        }
        if origin:
            headers["HTTP_ORIGIN"] = origin
        if token:
            headers["HTTP_X_SHELFSENSE_USER_TOKEN"] = token
        return store_client(tenant, **headers)

    return make


def _token(secret: str, user_id: str, seconds: int = 600) -> str:
    return user_token_sign(secret=secret, user_id=user_id, expires_at=int(time.time()) + seconds)


def _event(**fields) -> dict:
    return {
        "item_id": "alpha-only",
        "type": "view",
        "timestamp": datetime.now(UTC).isoformat(),
        **fields,
    }


def _events_of(tenant, **filters) -> list[tuple]:
    with tenant_context(tenant):
        return list(Event.objects.filter(**filters).values_list("user_id", "session_id", "type"))


def _code(response) -> str:
    return response.json()["error"]["code"]


# --- creation -----------------------------------------------------------------------------------
def test_a_publishable_key_is_stored_hashed_with_its_cleaned_origins_and_audited(alpha):
    with tenant_context(alpha):
        api_key, plaintext = publishable_key_create(
            name="Storefront",
            allowed_origins=[" https://Shop.Example/ ", "http://localhost:3000", SHOP],
        )
        row = ApiKey.objects.values().get(pk=api_key.pk)
        audit = AuditEvent.objects.get(action="api_key.created", target_id=str(api_key.pk))

    assert plaintext.startswith(f"ss_pub_{api_key.prefix}_")
    assert row["kind"] == "publishable"
    assert row["secret_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()
    assert all(plaintext.rsplit("_", 1)[-1] not in str(value) for value in row.values())
    assert row["allowed_origins"] == [SHOP, "http://localhost:3000"]
    assert row["scopes"] == ["recommend"]
    assert audit.details == {
        "name": "Storefront",
        "prefix": api_key.prefix,
        "kind": "publishable",
        "allowed_origins": [SHOP, "http://localhost:3000"],
    }


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("HTTPS://SHOP.EXAMPLE:443", "https://shop.example"),
        ("http://shop.example:80/", "http://shop.example"),
        ("https://shop.example:", "https://shop.example"),
        ("https://[::1]:443", "https://[::1]"),
        ("https://shop.example:8443", "https://shop.example:8443"),
        ("http://shop.example:443", "http://shop.example:443"),
        ("https://b\u00fccher.example", "https://xn--bcher-kva.example"),
        ("https://[0:0::1]:8443", "https://[::1]:8443"),
        ("https://127.0.0.1:443", "https://127.0.0.1"),
    ],
)
def test_an_origin_is_stored_as_browsers_send_it_without_the_default_port(
    alpha, browser, given, stored
):
    with tenant_context(alpha):
        api_key, plaintext = publishable_key_create(name="Storefront", allowed_origins=[given])

    assert api_key.allowed_origins == [stored]
    response = browser(alpha, plaintext, origin=stored).get(TRENDING)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "origin",
    [
        "shop.example",
        "ftp://shop.example",
        "https://shop.example/path",
        "https://*.example",
        "",
        "https://shop.example\\evil.com",
        "https://shop.example%00",
        "https://shop.example;x",
        "https://sh\x01op.example",
        "https://shop.example:0",
        "https://shop..example",
        "https://user@shop.example",
        "https://shop_1.example",
    ],
)
def test_an_origin_that_is_not_one_is_refused_naming_the_field(alpha, origin):
    with tenant_context(alpha), pytest.raises(ApplicationError) as raised:
        publishable_key_create(name="Storefront", allowed_origins=[origin])

    assert list(raised.value.fields) == ["allowed_origins"]
    with tenant_context(alpha):
        assert not ApiKey.objects.filter(kind="publishable").exists()
        assert not AuditEvent.objects.filter(action="api_key.created").exists()


# --- anonymous sessions -------------------------------------------------------------------------
def test_an_anonymous_session_tracks_and_gets_lists_from_an_allowed_origin(
    alpha, publishable, browser
):
    client = browser(alpha, publishable(alpha))

    tracked = client.post(
        EVENTS,
        [_event(session_id="s-1", event_id="pub-1"), _event(session_id="s-1", type="add_to_cart")],
        content_type="application/json",
    )
    lists = [
        client.get(path)
        for path in (
            TRENDING,
            "/api/v1/recommendations/sessions/s-1",
            "/api/v1/recommendations/items/alpha-only/similar",
            "/api/v1/recommendations/items/alpha-only/bought-together",
        )
    ]

    assert tracked.status_code == 202, tracked.content
    assert tracked.json() == {"accepted": 2, "duplicates": 0, "errors": []}
    assert tracked["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in tracked["Vary"]
    assert sorted(_events_of(alpha, session_id="s-1")) == [
        (None, "s-1", "add_to_cart"),
        (None, "s-1", "view"),
    ]
    assert [response.status_code for response in lists] == [200, 200, 200, 200]
    assert all(response["Access-Control-Allow-Origin"] == SHOP for response in lists)
    assert set(lists[0].json()) == {"recommendation_id", "model_version", "strategy", "items"}


def test_a_publishable_key_cannot_write_the_catalog_nor_manage(alpha, publishable, browser):
    client = browser(alpha, publishable(alpha))

    items = client.post("/api/v1/items/bulk", [{"item_id": "x"}], content_type="application/json")
    models = client.get("/api/v1/recommendations/models")
    export = client.get("/api/v1/users/u1/export")

    for response in (items, models, export):
        assert response.status_code == 401
        assert _code(response) == "publishable_key_not_allowed"
    with tenant_context(alpha):
        assert not Item.objects.filter(item_id="x").exists()


def test_a_browser_may_not_send_ratings_nor_too_many_events(alpha, publishable, browser):
    client = browser(alpha, publishable(alpha))

    rating = client.post(
        EVENTS, [_event(session_id="s-2", type="rating", value=5)], content_type="application/json"
    )
    flood = client.post(EVENTS, [_event(session_id="s-2")] * 101, content_type="application/json")

    assert rating.status_code == 403
    assert rating.json()["error"]["fields"] == {
        "type": ["row 0: not allowed with a publishable key"]
    }
    assert flood.status_code == 400
    assert _code(flood) == "too_many_events"
    assert _events_of(alpha, session_id="s-2") == []


# --- origins and CORS ---------------------------------------------------------------------------
@pytest.mark.parametrize("origin", ["https://evil.example", "http://shop.example", None])
def test_a_request_from_another_origin_or_none_is_refused_and_stores_nothing(
    alpha, publishable, browser, origin
):
    client = browser(alpha, publishable(alpha), origin=origin)

    tracked = client.post(EVENTS, [_event(session_id="s-3")], content_type="application/json")
    listed = client.get(TRENDING)

    for response in (tracked, listed):
        assert response.status_code == 403
        assert _code(response) == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in response
    assert _events_of(alpha, session_id="s-3") == []


def test_a_preflight_is_answered_for_the_stores_origins_only(alpha, publishable, store_client):
    publishable(alpha)

    def preflight(origin, method="POST"):
        return store_client(alpha).options(
            EVENTS,
            HTTP_ORIGIN=origin,
            HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
        )

    allowed = preflight(SHOP)
    unknown = preflight("https://evil.example")
    wrong_method = preflight(SHOP, "DELETE")

    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == SHOP
    assert allowed["Access-Control-Allow-Methods"] == "GET, POST"
    assert allowed["Access-Control-Allow-Headers"] == (
        "Authorization, Content-Type, X-ShelfSense-User-Token"
    )
    assert allowed["Access-Control-Max-Age"] == "600"
    for refused in (unknown, wrong_method):
        assert refused.status_code == 403
        assert _code(refused) == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in refused


def test_a_revoked_key_no_longer_opens_its_origin(
    alpha, publishable, browser, store_client, django_capture_on_commit_callbacks
):
    from apps.apikeys.services import api_key_revoke

    key = publishable(alpha)
    with tenant_context(alpha), django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(api_key=ApiKey.objects.get(kind="publishable"))

    listed = browser(alpha, key).get(TRENDING)
    preflight = store_client(alpha).options(
        TRENDING, HTTP_ORIGIN=SHOP, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET"
    )

    assert listed.status_code == 401
    assert _code(listed) == "api_key_revoked"
    assert preflight.status_code == 403


def test_a_key_and_its_origins_belong_to_one_store(alpha, beta, publishable, browser, store_client):
    key = publishable(alpha)

    on_beta = browser(beta, key).get(TRENDING)
    preflight_on_beta = store_client(beta).options(
        TRENDING, HTTP_ORIGIN=SHOP, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET"
    )

    assert on_beta.status_code == 401
    assert _code(on_beta) == "invalid_api_key"
    assert preflight_on_beta.status_code == 403


# --- known shoppers: user tokens ---------------------------------------------------------------
def test_a_shopper_list_needs_a_token_for_that_very_shopper(
    alpha, publishable, browser, identity_secret
):
    key, secret = publishable(alpha), identity_secret(alpha)

    without = browser(alpha, key).get("/api/v1/recommendations/users/u1")
    own = browser(alpha, key, token=_token(secret, "u1")).get("/api/v1/recommendations/users/u1")
    buy_again = browser(alpha, key, token=_token(secret, "u1")).get(
        "/api/v1/recommendations/users/u1/buy-again"
    )
    other = browser(alpha, key, token=_token(secret, "u1")).get("/api/v1/recommendations/users/u2")

    assert without.status_code == 403
    assert _code(without) == "user_token_required"
    assert (own.status_code, buy_again.status_code) == (200, 200)
    assert other.status_code == 403
    assert other.json()["error"] == {
        "code": "user_token_mismatch",
        "message": "The user token is for another shopper.",
        "fields": {},
    }


def test_events_as_a_shopper_need_that_shoppers_token(alpha, publishable, browser, identity_secret):
    key, secret = publishable(alpha), identity_secret(alpha)
    row = _event(user_id="u1", session_id="s-4")

    anonymous = browser(alpha, key).post(EVENTS, [row], content_type="application/json")
    someone_else = browser(alpha, key, token=_token(secret, "u2")).post(
        EVENTS, [row], content_type="application/json"
    )
    assert (anonymous.status_code, _code(anonymous)) == (403, "user_token_required")
    assert (someone_else.status_code, _code(someone_else)) == (403, "user_token_mismatch")
    assert _events_of(alpha, session_id="s-4") == []

    own = browser(alpha, key, token=_token(secret, "u1")).post(
        EVENTS, [row], content_type="application/json"
    )
    assert own.status_code == 202
    assert _events_of(alpha, session_id="s-4") == [("u1", "s-4", "view")]


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (lambda secret: _token(secret, "u1", seconds=-1), "user_token_expired"),
        (
            lambda secret: _token(secret, "u1", seconds=USER_TOKEN_MAX_SECONDS + 60),
            "invalid_user_token",
        ),
        (lambda secret: _token(secret, "u1")[:-2] + "xx", "invalid_user_token"),
        (lambda secret: _token("ss_idv_guessed", "u1"), "invalid_user_token"),
        (lambda secret: "not-a-token", "invalid_user_token"),
        # Non-ASCII (a header's bytes arrive as latin-1): the signature and the expiry.
        (lambda secret: _token(secret, "u1")[:-1] + "\u00e9", "invalid_user_token"),
        (lambda secret: "dTE.\u00b2.abc", "invalid_user_token"),
    ],
)
def test_an_expired_forged_or_malformed_token_is_401(
    alpha, publishable, browser, identity_secret, make_token, code
):
    key, secret = publishable(alpha), identity_secret(alpha)

    response = browser(alpha, key, token=make_token(secret)).get("/api/v1/recommendations/users/u1")

    assert response.status_code == 401
    assert _code(response) == code


def test_rotating_the_secret_ends_old_tokens_and_another_stores_secret_never_works(
    alpha, beta, publishable, browser, identity_secret
):
    alpha_key, beta_key = publishable(alpha), publishable(beta)
    old_secret = identity_secret(alpha)
    beta_secret = identity_secret(beta)
    new_secret = identity_secret(alpha)
    path = "/api/v1/recommendations/users/u1"

    old = browser(alpha, alpha_key, token=_token(old_secret, "u1")).get(path)
    foreign = browser(alpha, alpha_key, token=_token(beta_secret, "u1")).get(path)
    new = browser(alpha, alpha_key, token=_token(new_secret, "u1")).get(path)
    on_beta = browser(beta, beta_key, token=_token(new_secret, "u1")).get(path)

    assert (old.status_code, _code(old)) == (401, "invalid_user_token")
    assert (foreign.status_code, _code(foreign)) == (401, "invalid_user_token")
    assert new.status_code == 200
    assert on_beta.status_code == 401
    with tenant_context(alpha):
        row = IdentitySecret.objects.get()
        assert new_secret not in row.encrypted_secret
        assert AuditEvent.objects.filter(action="api_key.identity_secret_rotated").count() == 2


def test_a_store_without_a_secret_says_so(alpha, publishable, browser):
    response = browser(alpha, publishable(alpha), token=_token("ss_idv_x", "u1")).get(
        "/api/v1/recommendations/users/u1"
    )

    assert response.status_code == 401
    assert _code(response) == "identity_verification_not_set_up"


# --- rate limits --------------------------------------------------------------------------------
def test_each_key_is_rate_limited_with_retry_after_readable_by_the_page(
    alpha, publishable, browser, settings
):
    settings.PUBLISHABLE_KEY_RATE_LIMIT = "3/min"
    settings.PUBLISHABLE_IP_RATE_LIMIT = ""
    key, other_key = publishable(alpha), publishable(alpha, name="Second shop")

    statuses = [browser(alpha, key).get(TRENDING).status_code for _ in range(3)]
    throttled = browser(alpha, key).get(TRENDING)
    other = browser(alpha, other_key).get(TRENDING)

    assert statuses == [200, 200, 200]
    assert throttled.status_code == 429
    assert 1 <= int(throttled["Retry-After"]) <= 60
    assert throttled["Access-Control-Allow-Origin"] == SHOP
    assert throttled.json()["error"]["message"].startswith(
        "Rate limit of this publishable key exceeded"
    )
    assert other.status_code == 200


def test_each_client_address_is_rate_limited_across_keys_in_its_store_only(
    alpha, beta, publishable, store_client, settings
):
    settings.PUBLISHABLE_KEY_RATE_LIMIT = ""
    settings.PUBLISHABLE_IP_RATE_LIMIT = "2/min"
    keys = [publishable(alpha), publishable(alpha, name="Second")]
    beta_key = publishable(beta)

    def get(tenant, key, address):
        return store_client(
            tenant, HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_ORIGIN=SHOP, REMOTE_ADDR=address
        ).get(TRENDING)

    statuses = [get(alpha, key, "10.9.9.1").status_code for key in keys]
    third = get(alpha, keys[0], "10.9.9.1")
    other_address = get(alpha, keys[1], "10.9.9.2")
    other_store = get(beta, beta_key, "10.9.9.1")

    assert statuses == [200, 200]
    assert third.status_code == 429
    assert third.json()["error"]["message"].startswith("Rate limit of this client address exceeded")
    assert (other_address.status_code, other_store.status_code) == (200, 200)
    counters = [
        key.decode() for key in redis_client().scan_iter(match="*:apikey:pub-ip:10.9.9.1:*")
    ]
    assert sorted(counter.split(":")[0] for counter in counters) == [
        alpha.schema_name,
        beta.schema_name,
    ]


# --- the 401 for the wrong scheme ---------------------------------------------------------------
def test_the_token_scheme_gets_a_clear_401(alpha, store_client):
    _, key = api_key_for(alpha)

    response = store_client(alpha, HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/items/")

    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "wrong_auth_scheme",
        "message": 'Send the API key as "Authorization: Bearer <API key>"; the "Token" '
        "scheme is not accepted.",
        "fields": {},
    }


# --- the dashboard ------------------------------------------------------------------------------
def test_a_member_creates_a_publishable_key_and_the_secret_on_the_keys_page(alpha, member_client):
    client, _ = member_client(alpha, role="owner")

    bad = client.post(
        "/api-keys/", {"kind": "publishable", "name": "Shop", "allowed_origins": "shop.example"}
    )
    created = client.post(
        "/api-keys/",
        {
            "kind": "publishable",
            "name": "Shop",
            "allowed_origins": f"{SHOP}\nhttp://localhost:3000",
        },
    )
    secret = client.post("/api-keys/", {"kind": "identity_secret"})
    listed = client.get("/api-keys/")

    assert bad.status_code == 400
    assert "Not an origin: &#x27;shop.example&#x27;" in bad.content.decode()
    assert created.status_code == 200
    key = created.context["created_key"]
    assert key.startswith("ss_pub_")
    assert key in created.content.decode()
    assert secret.context["identity_secret"].startswith("ss_idv_")
    assert secret.context["identity_secret"] in secret.content.decode()
    page = listed.content.decode()
    assert "errorlist" not in page
    assert key not in page
    assert secret.context["identity_secret"] not in page
    assert f"{SHOP}, http://localhost:3000" in page
    with tenant_context(alpha):
        assert ApiKey.objects.get(kind="publishable").allowed_origins == [
            SHOP,
            "http://localhost:3000",
        ]
    connection.set_schema_to_public()


def test_events_ingest_is_unchanged_for_secret_keys(alpha, store_client):
    """The SDK's checks apply to publishable keys only: a secret key still sends ratings and
    any shopper's events."""
    _, key = api_key_for(alpha, scopes=("ingest",))
    with tenant_context(alpha):
        events_ingest(rows=[_event(user_id="u9", type="view")], source="api")

    response = store_client(alpha, HTTP_AUTHORIZATION=f"Bearer {key}").post(
        EVENTS, [_event(user_id="u9", type="rating", value=4)], content_type="application/json"
    )

    assert response.status_code == 202
    assert sorted(_events_of(alpha, user_id="u9")) == [("u9", None, "rating"), ("u9", None, "view")]


# --- the secret at rest and PII key rotation ----------------------------------------------------
@pytest.fixture
def pii_keys(settings):
    def use(*keys: bytes) -> None:
        settings.PII_ENCRYPTION_KEYS = [key.decode() for key in keys]
        pii.keys_changed()

    yield use
    pii.keys_changed()


def test_pii_key_rotation_re_encrypts_the_secret_and_a_lost_key_is_a_401_not_a_500(
    alpha, publishable, browser, identity_secret, pii_keys
):
    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    pii_keys(old_key)
    key, secret = publishable(alpha), identity_secret(alpha)
    path = "/api/v1/recommendations/users/u1"

    pii_keys(new_key, old_key)
    call_command("pii_reencrypt", stdout=io.StringIO())
    pii_keys(new_key)
    publishable_cache.identity_secret_forget(alpha.schema_name)
    after_rotation = browser(alpha, key, token=_token(secret, "u1")).get(path)

    pii_keys(Fernet.generate_key())
    publishable_cache.identity_secret_forget(alpha.schema_name)
    key_lost = browser(alpha, key, token=_token(secret, "u1")).get(path)

    assert after_rotation.status_code == 200
    assert key_lost.status_code == 401
    assert _code(key_lost) == "identity_verification_not_set_up"
