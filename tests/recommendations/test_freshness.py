"""Read-your-writes freshness (issue 15, item 1): once `POST /events/bulk` has answered 202, the
shopper's next recommendation request, on any web process, reflects the events. Real data, a
real trained model, the real Redis, through the HTTP API."""

from __future__ import annotations

import http.client
from datetime import timedelta

import orjson
import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog.recent import recent_key, recent_latest_key
from apps.core.cache import redis_client
from apps.recommendations import cache as rcache
from apps.tenants.selectors import store_domain
from ml.explain import REASON_CODES
from tests.factories import api_key_for
from tests.faults.conftest import server_env, test_database_url
from tests.processes import ProcessSet

pytestmark = pytest.mark.django_db

LIST = "/api/v1/recommendations/users/{}?k={}"


@pytest.fixture(autouse=True)
def _no_recent_lists_left(stores):
    """Recent-events and re-scored lists live in Redis, outside the test's transaction."""
    yield
    client = redis_client()
    for tenant in (stores.a, stores.b):
        for family in ("recent", "recent-at", "fresh"):
            for key in client.scan_iter(match=f"{tenant.schema_name}:*:{family}:*", count=1000):
                client.delete(key)


def _now(seconds_ago: int = 0) -> str:
    return (timezone.now() - timedelta(seconds=seconds_ago)).isoformat()


def _post(client, events, capture):
    with capture(execute=True):
        response = client.post("/api/v1/events/bulk", events, content_type="application/json")
    assert response.status_code == 202, response.content
    return response.json()


def _event(user_id: str, item_id: str, kind: str, n: int, **extra) -> dict:
    return {
        "event_id": f"fresh-{user_id}-{item_id}-{kind}-{n}",
        "user_id": user_id,
        "item_id": item_id,
        "type": kind,
        "timestamp": _now(60 - n),
        **extra,
    }


def _items(response) -> list[str]:
    return [row["item_id"] for row in response.json()["items"]]


def test_events_change_the_next_answer(stores, key_client, django_capture_on_commit_callbacks):
    # given shopper 21's precomputed list
    client = key_client(stores.a, scopes=("ingest", "recommend"))
    before = client.get(LIST.format(21, 20)).json()
    assert not before["strategy"].endswith("+fresh")

    # when they view five items they never had in training
    viewed = [f"a{n}" for n in (300, 301, 302, 303, 304)]
    _post(
        client,
        [_event("21", item, "view", n) for n, item in enumerate(viewed)],
        django_capture_on_commit_callbacks,
    )
    after = client.get(LIST.format(21, 20)).json()

    # then the list is re-scored with those events, and cached (with each item's reason) for
    # their latest one
    assert after["strategy"] == before["strategy"] + "+fresh"
    assert after["items"] != before["items"]
    marker, strategy, cached, reasons, seen = orjson.loads(
        redis_client().get(rcache.fresh_key(stores.a.schema_name, "21"))
    )
    latest = redis_client().get(recent_latest_key("21", schema_name=stores.a.schema_name))
    assert strategy == after["strategy"]
    assert [item for item, _ in cached[:20]] == [row["item_id"] for row in after["items"]]
    assert marker.endswith(f"|{latest.decode()}|default")
    assert len(reasons) == len(cached)
    assert all(reason[0] in REASON_CODES for reason in reasons)
    assert seen == []  # views are not of the "seen" types


def test_a_just_bought_item_disappears_from_an_exclude_seen_list(
    stores, key_client, django_capture_on_commit_callbacks
):
    # given the top items recommended to shopper 22
    client = key_client(stores.a, scopes=("ingest", "recommend"))
    top = _items(client.get(LIST.format(22, 5)))

    # when they buy the first and rate the second
    _post(
        client,
        [_event("22", top[0], "purchase", 0), _event("22", top[1], "rating", 1, value=4)],
        django_capture_on_commit_callbacks,
    )

    # then the very next answer leaves both out (and still has five items)
    after = client.get(LIST.format(22, 100))
    assert after.json()["strategy"].endswith("+fresh")
    assert top[0] not in _items(after)
    assert top[1] not in _items(after)
    assert len(_items(client.get(LIST.format(22, 5)))) == 5


def test_dismiss_means_not_interested(stores, key_client, django_capture_on_commit_callbacks):
    # given shopper 23's top item
    client = key_client(stores.a, scopes=("ingest", "recommend"))
    first = _items(client.get(LIST.format(23, 1)))[0]

    # when they dismiss it
    result = _post(client, [_event("23", first, "dismiss", 0)], django_capture_on_commit_callbacks)

    # then it is stored as a dismiss event and gone from their list at once
    assert result == {"accepted": 1, "duplicates": 0, "errors": []}
    assert first not in _items(client.get(LIST.format(23, 100)))


def test_seen_event_types_are_a_store_setting(
    stores, key_client, django_capture_on_commit_callbacks
):
    # given store A counting only dismissals as "seen"
    stores.a.seen_event_types = ["dismiss"]
    stores.a.save(update_fields=["seen_event_types"])
    from apps.tenants.hosts import forget_tenant_hosts

    forget_tenant_hosts()
    client = key_client(stores.a, scopes=("ingest", "recommend"))
    top = _items(client.get(LIST.format(24, 5)))

    # when shopper 24 buys their top item and dismisses the second
    _post(
        client,
        [_event("24", top[0], "purchase", 0), _event("24", top[1], "dismiss", 1)],
        django_capture_on_commit_callbacks,
    )

    # then the purchase stays listable, the dismissal does not
    after = _items(client.get(LIST.format(24, 100)))
    assert top[0] in after
    assert top[1] not in after
    forget_tenant_hosts()


def test_a_shoppers_recent_events_never_reach_another_store(
    stores, key_client, django_capture_on_commit_callbacks
):
    # given shopper 25 in both stores, and their answer in store B
    client_a = key_client(stores.a, scopes=("ingest", "recommend"))
    client_b = key_client(stores.b, scopes=("ingest", "recommend"))
    before_b = client_b.get(LIST.format(25, 20)).json()
    top_a = _items(client_a.get(LIST.format(25, 3)))

    # when the shopper buys in store A
    _post(
        client_a,
        [_event("25", item, "purchase", n) for n, item in enumerate(top_a)],
        django_capture_on_commit_callbacks,
    )

    # then store A reacts, store B's answer is what it was
    assert client_a.get(LIST.format(25, 20)).json()["strategy"].endswith("+fresh")
    after_b = client_b.get(LIST.format(25, 20)).json()
    assert after_b["strategy"] == before_b["strategy"]
    assert after_b["items"] == before_b["items"]
    assert redis_client().exists(recent_key("25", schema_name=stores.b.schema_name)) == 0


def test_erasure_drops_the_recent_events_and_the_rescored_list(
    stores, key_client, django_capture_on_commit_callbacks
):
    # given a new shopper with events since training and a re-scored list
    client = key_client(stores.a, scopes=("ingest", "recommend", "manage"))
    user = "fresh-erasure-probe"
    _post(
        client,
        [_event(user, f"a{n}", "view", n) for n in (50, 181, 100)],
        django_capture_on_commit_callbacks,
    )
    assert client.get(LIST.format(user, 5)).json()["strategy"].endswith("+fresh")
    schema = stores.a.schema_name
    keys = [recent_key(user, schema_name=schema), rcache.fresh_key(schema, user)]
    assert redis_client().exists(*keys) == 2

    # when the shopper is erased
    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete(f"/api/v1/users/{user}")

    # then neither list is left, and the next answer knows nothing of them
    assert response.status_code == 200
    assert response.json()["erased"]["recent_events"] == 1
    assert response.json()["erased"]["fresh_lists"] == 1
    assert redis_client().exists(*keys) == 0
    assert client.get(LIST.format(user, 5)).json()["strategy"] == "trending"


def test_with_redis_down_the_events_since_training_come_from_postgres(
    stores, key_client, django_capture_on_commit_callbacks, settings
):
    # given shopper 26 bought their top item (committed; the recent list in Redis too)
    client = key_client(stores.a, scopes=("ingest", "recommend"))
    first = _items(client.get(LIST.format(26, 1)))[0]
    _post(client, [_event("26", first, "purchase", 0)], django_capture_on_commit_callbacks)

    # when Redis becomes unreachable (the client points at a closed port)
    redis_client.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    rcache._redis_down_until = 0.0
    try:
        response = client.get(LIST.format(26, 100))
    finally:
        redis_client.cache_clear()
        rcache._redis_down_until = 0.0

    # then the model re-scores from PostgreSQL's events, without the bought item
    assert response.status_code == 200
    assert response.json()["strategy"].endswith("+fresh")
    assert first not in _items(response)


@pytest.fixture(scope="module")
def committed_key(stores, django_db_blocker):
    """An API key of store A committed, for server processes to see."""
    with django_db_blocker.unblock():
        api_key, key = api_key_for(stores.a, scopes=("ingest", "recommend"))
        connection.set_schema_to_public()
    yield key
    with django_db_blocker.unblock(), tenant_context(stores.a):
        api_key.delete()
    connection.set_schema_to_public()


def _request(port: int, method: str, path: str, key: str, body: bytes | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Host": store_domain("recs-a"), "Authorization": f"Bearer {key}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, orjson.loads(response.read())


def test_an_event_posted_to_one_web_process_shows_on_another(stores, committed_key, tmp_path):
    env = server_env(database_url=test_database_url(), redis_url=redis_client_url())
    with ProcessSet(tmp_path / "logs") as procs:
        first = procs.web("granian", env=env, workers=1, threads=1)
        second = procs.web("granian", env=env, workers=1, threads=1)
        status, before = _request(second.port, "GET", LIST.format(27, 5), committed_key)
        assert status == 200, before
        bought = before["items"][0]["item_id"]

        # when shopper 27 buys their top item through the first process
        status, result = _request(
            first.port,
            "POST",
            "/api/v1/events/bulk",
            committed_key,
            orjson.dumps([_event("27", bought, "purchase", 0)]),
        )
        assert (status, result["accepted"]) == (202, 1)

        # then the second process's very next answer reflects it
        status, after = _request(second.port, "GET", LIST.format(27, 100), committed_key)
    assert status == 200
    assert after["strategy"] == before["strategy"] + "+fresh"
    assert bought not in [row["item_id"] for row in after["items"]]
    # The committed event goes with store A's schema at the end of the package.


def redis_client_url() -> str:
    from django.conf import settings

    return settings.REDIS_URL
