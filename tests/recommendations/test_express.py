"""The express lane (apps/recommendations/express.py): a shopper-list request it takes gets the
answer the full middleware chain gives, and a request it must not take goes through the chain.

Both applications are real WSGI handlers on the real stores of this package (PostgreSQL
schemas, Redis, trained models); every request is sent to both and the answers compared: status,
headers (all but the request id) and body (all but the recommendation id, new on each call).
"""

from __future__ import annotations

import threading

import orjson
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test import RequestFactory, override_settings
from django_tenants.utils import tenant_context

from apps.apikeys.models import ApiKey
from apps.apikeys.services import api_key_revoke, publishable_key_create
from apps.core.metrics import REQUESTS
from apps.core.wsgi import keep_path_bytes
from apps.recommendations import express
from apps.tenants.hosts import forget_tenant_hosts, tenant_host_remember
from apps.tenants.selectors import store_domain
from tests.factories import api_key_for

pytestmark = pytest.mark.django_db

PATH = "/api/v1/recommendations/users/7"


@pytest.fixture
def apps():
    """(the full chain, the lane in front of it), wrapped as config/wsgi.py wraps them."""
    django_application = WSGIHandler()
    return keep_path_bytes(django_application), keep_path_bytes(
        express.express_lane(django_application)
    )


@pytest.fixture(autouse=True)
def _connections_kept_open():
    """The handlers' request signals close the thread's database connection, which here holds
    the test's transaction: Django's test client disconnects them the same way."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture(scope="module")
def keys(stores, django_db_blocker):
    """Plaintext keys, committed (other threads read them): store A's recommend, ingest-only,
    revoked and publishable keys, a second recommend key of A, and a recommend key of B."""
    with django_db_blocker.unblock():
        _, recommend = api_key_for(stores.a, scopes=("recommend",))
        _, second = api_key_for(stores.a, scopes=("recommend",))
        _, ingest = api_key_for(stores.a, scopes=("ingest",))
        revoked_key, revoked = api_key_for(stores.a, scopes=("recommend",))
        with tenant_context(stores.a):
            api_key_revoke(api_key=revoked_key, actor_label="test")
            _, publishable = publishable_key_create(
                name="Shop", allowed_origins=["https://shop.example"], actor_label="test"
            )
        _, other_store = api_key_for(stores.b, scopes=("recommend",))
        connection.set_schema_to_public()
    yield {
        "recommend": recommend,
        "second": second,
        "ingest": ingest,
        "revoked": revoked,
        "publishable": publishable,
        "other_store": other_store,
    }
    with django_db_blocker.unblock():
        for tenant in (stores.a, stores.b):
            with tenant_context(tenant):
                ApiKey.objects.all().delete()
        connection.set_schema_to_public()


def environ(tenant, path: str = PATH, *, key: str | None = None, method: str = "GET", **extra):
    headers = {"HTTP_HOST": store_domain(tenant.slug), **extra}
    if key is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    request = RequestFactory().generic(method, path, **headers)
    return request.environ


def call(application, env: dict) -> tuple[str, dict[str, str], bytes]:
    started: list = []
    result = application(
        dict(env), lambda status, headers, exc_info=None: started.append((status, headers))
    )
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    status, headers = started[0]
    return status, dict(headers), body


def comparable(answer: tuple[str, dict[str, str], bytes]) -> tuple:
    status, headers, body = answer
    headers = {name: value for name, value in headers.items() if name != "X-Request-ID"}
    if headers.get("Content-Type") == "application/json":
        data = orjson.loads(body)
        if isinstance(data, dict):
            data.pop("recommendation_id", None)
        # The new id has the same length each time: Content-Length compares as is.
        return status, headers, data
    return status, headers, body


def warm(full, tenant) -> None:
    """One request through the chain, so TenantMiddleware caches the store's host."""
    call(full, environ(tenant, "/api/v1/does-not-exist"))


TAKEN = [
    ("a cached list", PATH, "recommend", {}),
    ("filters", f"{PATH}?k=5&in_stock=false&exclude_seen=false&category=Drama", "recommend", {}),
    ("a shopper the model never saw", "/api/v1/recommendations/users/nobody-9", "recommend", {}),
    ("k below 1", f"{PATH}?k=0", "recommend", {}),
    ("k not a number", f"{PATH}?k=ten", "recommend", {}),
    ("exclude_seen not a boolean", f"{PATH}?exclude_seen=maybe", "recommend", {}),
    ("a NUL in the query", f"{PATH}?category=%00", "recommend", {}),
    ("a placement's rules", f"{PATH}?price_max=20&explain=true", "recommend", {}),
    ("no key", PATH, None, {}),
    ("a malformed key", PATH, None, {"HTTP_AUTHORIZATION": "Bearer ss_live_nope"}),
    ("the Token scheme", PATH, None, {"HTTP_AUTHORIZATION": "Token abc"}),
    ("a key without the recommend scope", PATH, "ingest", {}),
    ("a revoked key", PATH, "revoked", {}),
    ("another store's key", PATH, "other_store", {}),
    ("a publishable key without an Origin", PATH, "publishable", {}),
    ("buy again", f"{PATH}/buy-again?k=3", "recommend", {}),
    ("similar items", "/api/v1/recommendations/items/a50/similar?k=4", "recommend", {}),
    ("similar to an unknown item", "/api/v1/recommendations/items/zz/similar", "recommend", {}),
    ("bought together", "/api/v1/recommendations/items/a50/bought-together", "recommend", {}),
    ("a session", "/api/v1/recommendations/sessions/visit-1?k=5", "recommend", {}),
    ("trending", "/api/v1/recommendations/trending?k=5&category=Drama", "recommend", {}),
    ("trending without a key", "/api/v1/recommendations/trending", None, {}),
    ("similar items, bad k", "/api/v1/recommendations/items/a50/similar?k=x", "recommend", {}),
    ("a session, wrong scope", "/api/v1/recommendations/sessions/v", "ingest", {}),
]


@pytest.mark.parametrize(("case", "path", "key_name", "extra"), TAKEN, ids=[t[0] for t in TAKEN])
def test_the_lane_answers_what_the_full_chain_answers(
    stores, keys, apps, case, path, key_name, extra
):
    # given store A's host cached by an earlier request
    full, lane = apps
    warm(full, stores.a)
    env = environ(stores.a, path, key=keys.get(key_name), **extra)

    # when the same request goes through the lane and through the full chain
    assert express.express_takes(dict(env))
    through_lane = call(lane, env)
    through_chain = call(full, env)

    # then the answers are the same
    assert comparable(through_lane) == comparable(through_chain)


def test_the_lane_serves_each_store_its_own_lists_from_concurrent_threads(stores, keys, apps):
    # given both stores' hosts cached and a key of each
    full, lane = apps
    key_a, key_b = keys["second"], keys["other_store"]
    for tenant in (stores.a, stores.b):
        warm(full, tenant)
    answers: dict[str, list] = {"a": [], "b": []}

    def shop(name: str, tenant, key: str) -> None:
        for user in range(1, 41):
            env = environ(tenant, f"/api/v1/recommendations/users/{user}", key=key)
            assert express.express_takes(dict(env))
            answers[name].append(call(lane, env))
        connection.close()

    # when both stores' shoppers are served at once by the lane
    threads = [
        threading.Thread(target=shop, args=("a", stores.a, key_a)),
        threading.Thread(target=shop, args=("b", stores.b, key_b)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then every list holds only its own store's items (A's ids start with "a", B's with "b")
    for name in ("a", "b"):
        assert len(answers[name]) == 40
        for status, _, body in answers[name]:
            assert status == "200 OK"
            items = [row["item_id"] for row in orjson.loads(body)["items"]]
            assert items
            assert all(item.startswith(name) for item in items)


NOT_TAKEN = [
    ("a POST", PATH, {"method": "POST"}),
    ("a HEAD", PATH, {"method": "HEAD"}),
    ("a session cookie", PATH, {"HTTP_COOKIE": "sessionid=abc"}),
    ("an Origin (CORS)", PATH, {"HTTP_ORIGIN": "https://shop.example"}),
    ("an id with a slash", "/api/v1/recommendations/users/a/b", {}),
    ("an item id with a slash", "/api/v1/recommendations/items/a/b/similar", {}),
    ("an id with a space", "/api/v1/recommendations/users/a%20b", {}),
    ("a non-ASCII id", "/api/v1/recommendations/users/%C3%A9", {}),
    ("a management endpoint", "/api/v1/recommendations/models", {}),
    ("trending with a suffix", "/api/v1/recommendations/trending/", {}),
    ("another API", "/api/v1/items", {}),
]


@pytest.mark.parametrize(("case", "path", "extra"), NOT_TAKEN, ids=[t[0] for t in NOT_TAKEN])
def test_requests_the_lane_was_not_written_for_go_through_the_full_chain(
    stores, apps, case, path, extra
):
    full, _ = apps
    warm(full, stores.a)
    assert not express.express_takes(environ(stores.a, path, **extra))


def test_hosts_without_a_cached_active_store_go_through_the_full_chain(stores, apps):
    full, _ = apps
    forget_tenant_hosts()
    # a host no request has resolved yet in this process, an unknown host, the public host
    assert not express.express_takes(environ(stores.b))
    assert not express.express_takes({**environ(stores.a), "HTTP_HOST": "nope.localhost"})
    assert not express.express_takes({**environ(stores.a), "HTTP_HOST": "localhost"})
    # a suspended store (as the host cache holds it after suspension)
    warm(full, stores.a)
    assert express.express_takes(environ(stores.a))
    suspended = type(stores.a).objects.get(pk=stores.a.pk)
    suspended.status = type(stores.a).Status.SUSPENDED
    tenant_host_remember(store_domain(stores.a.slug), suspended)
    try:
        assert not express.express_takes(environ(stores.a))
    finally:
        forget_tenant_hosts()


def test_an_error_in_the_view_is_answered_as_the_full_chain_answers_it(
    stores, keys, apps, monkeypatch
):
    # given serving that fails unexpectedly
    full, lane = apps
    warm(full, stores.a)

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("apps.recommendations.serving.recommend_for_shopper", broken)
    env = environ(stores.a, key=keys["recommend"])

    # when the lane and the chain answer
    through_lane, through_chain = call(lane, env), call(full, env)

    # then both give the same 500 JSON body
    assert through_lane[0].startswith("500")
    assert comparable(through_lane) == comparable(through_chain)


def test_lane_answers_are_counted_in_metrics_and_api_usage(stores, keys, apps, monkeypatch):
    # given the store's host cached, and the anomaly detector's counting recorded
    full, lane = apps
    warm(full, stores.a)
    counted: list = []
    monkeypatch.setattr(
        "apps.notifications.middleware.api_request_count",
        lambda status, schema_name: counted.append((status, schema_name)),
    )
    counter = REQUESTS.labels("GET", "api", "200")
    before = counter._value.get()

    # when the lane answers a list
    status, _, _ = call(lane, environ(stores.a, key=keys["recommend"]))

    # then it is counted as any API request is
    assert status == "200 OK"
    assert counter._value.get() == before + 1
    assert counted == [(200, stores.a.schema_name)]


def test_the_lane_is_off_when_settings_say_so_or_the_chain_has_a_middleware_it_does_not_know(
    settings,
):
    django_application = WSGIHandler()
    with override_settings(SERVING_EXPRESS_LANE=False):
        assert express.express_lane(django_application) is django_application
    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, "tests.somewhere.NewMiddleware"]):
        assert express.express_lane(django_application) is django_application
    assert express.express_lane(django_application) is not django_application


def test_the_production_wsgi_application_has_the_lane_in_front(monkeypatch):
    import importlib

    monkeypatch.setenv("SHELFSENSE_PROCESS", "web")
    wsgi = importlib.import_module("config.wsgi")
    seen: list = []
    monkeypatch.setattr(express, "express_takes", lambda env: seen.append(env) or False)
    call(wsgi.application, {**environ_for_probe(), "PATH_INFO": "/healthz"})
    assert seen


def environ_for_probe() -> dict:
    return RequestFactory().get("/healthz").environ


@pytest.mark.parametrize(
    "path",
    [
        "users/u-1",
        "users/u-1/buy-again",
        "items/i.1/similar",
        "items/i.1/bought-together",
        "sessions/s:1",
        "trending",
    ],
)
def test_each_lane_route_is_the_view_the_url_resolver_picks(settings, path):
    # ROUTES restates the list routes of apps/recommendations/urls.py: they must not drift.
    from django.urls import resolve

    view, arguments = express._route(path)
    match = resolve(f"/api/v1/recommendations/{path}", urlconf=settings.ROOT_URLCONF)
    assert match.func.view_class is view.view_class
    assert match.kwargs == arguments
