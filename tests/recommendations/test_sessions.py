"""Sessions (issue 15, item 2): anonymous visitors' events carry a `session_id`, the session
endpoint recommends from them, an event with both ids links the session to the shopper, and
erasure covers linked sessions. Real trained model, real Redis, through the HTTP API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog.models import Event, SessionLink
from apps.core.cache import redis_client

pytestmark = pytest.mark.django_db

SESSION = "/api/v1/recommendations/sessions/{}?k={}"
USER = "/api/v1/recommendations/users/{}?k={}"


@pytest.fixture(autouse=True)
def _no_lists_left(stores):
    yield
    client = redis_client()
    for tenant in (stores.a, stores.b):
        for family in ("recent", "recent-at", "fresh", "srecent", "slink"):
            for key in client.scan_iter(match=f"{tenant.schema_name}:*:{family}:*", count=1000):
                client.delete(key)


def _event(item_id: str, n: int, *, session: str | None = None, user: str | None = None):
    row = {
        "event_id": f"sess-{session}-{user}-{item_id}-{n}",
        "item_id": item_id,
        "type": "view",
        "timestamp": (timezone.now() - timedelta(seconds=60 - n)).isoformat(),
    }
    if session is not None:
        row["session_id"] = session
    if user is not None:
        row["user_id"] = user
    return row


def _post(client, events, capture):
    with capture(execute=True):
        response = client.post("/api/v1/events/bulk", events, content_type="application/json")
    assert response.status_code == 202, response.content
    return response.json()


def _items(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["item_id"] for row in response.json()["items"]]


def test_a_sessions_list_follows_its_events(stores, key_client, django_capture_on_commit_callbacks):
    client = key_client(stores.a, scopes=("ingest", "recommend"))
    empty = _items(client.get(SESSION.format("visit-1", 20)))

    result = _post(
        client,
        [_event(f"a{n}", n, session="visit-1") for n in (300, 301, 302)],
        django_capture_on_commit_callbacks,
    )
    after = _items(client.get(SESSION.format("visit-1", 20)))
    # a further event (a purchase: "seen") changes the next answer again
    _post(
        client,
        [{**_event(after[0], 40, session="visit-1"), "type": "purchase", "order_id": "o-1"}],
        django_capture_on_commit_callbacks,
    )
    later = _items(client.get(SESSION.format("visit-1", 20)))

    assert result == {"accepted": 3, "duplicates": 0, "errors": []}
    assert after != empty
    assert after[0] not in later
    with tenant_context(stores.a):
        stored = list(Event.objects.filter(session_id="visit-1").values_list("user_id", "order_id"))
    assert sorted(stored, key=lambda row: row[1] or "") == [(None, None)] * 3 + [(None, "o-1")]


def test_sign_in_links_the_session_to_the_shopper(
    stores, key_client, django_capture_on_commit_callbacks
):
    # given an anonymous session with views, and shopper 21's list before signing in
    client = key_client(stores.a, scopes=("ingest", "recommend"))
    viewed = [f"a{n}" for n in (300, 301, 302, 303, 304)]
    _post(
        client,
        [_event(item, n, session="visit-2") for n, item in enumerate(viewed)],
        django_capture_on_commit_callbacks,
    )
    before = client.get(USER.format(21, 20)).json()

    # when one event carries both the session and the shopper
    _post(
        client,
        [_event("a305", 10, session="visit-2", user="21")],
        django_capture_on_commit_callbacks,
    )
    after = client.get(USER.format(21, 20)).json()
    with tenant_context(stores.a):
        links = list(SessionLink.objects.values_list("session_id", "user_id"))
        anonymous = Event.objects.filter(session_id="visit-2", user_id__isnull=True).count()

    # then the shopper's list is re-scored with the session's events too (their recent list
    # holds the five anonymous views and the signed-in one), the link is stored, and the
    # session's events are not rewritten
    assert not before["strategy"].endswith("+fresh")
    assert after["strategy"].endswith("+fresh")
    assert links == [("visit-2", "21")]
    assert anonymous == 5
    key = f"{stores.a.schema_name}:"
    recent = [k for k in redis_client().scan_iter(match=f"{key}*:recent:21")]
    assert len(redis_client().lrange(recent[0], 0, -1)) == 6


def test_session_lists_never_cross_stores(stores, key_client, django_capture_on_commit_callbacks):
    a = key_client(stores.a, scopes=("ingest", "recommend"))
    b = key_client(stores.b, scopes=("ingest", "recommend"))
    b_before = b.get(SESSION.format("visit-3", 20)).json()
    _post(
        a,
        [_event(f"a{n}", n, session="visit-3") for n in (300, 301)],
        django_capture_on_commit_callbacks,
    )

    b_after = b.get(SESSION.format("visit-3", 20)).json()

    assert b_after["strategy"] == b_before["strategy"]
    assert [r["item_id"] for r in b_after["items"]] == [r["item_id"] for r in b_before["items"]]


def test_user_id_is_required_without_a_session(stores, key_client):
    client = key_client(stores.a, scopes=("ingest", "recommend"))
    row = _event("a1", 1)
    order_on_view = {**_event("a1", 2, user="21"), "order_id": "o-9"}

    response = client.post(
        "/api/v1/events/bulk", [row, order_on_view], content_type="application/json"
    )

    assert response.json() == {
        "accepted": 0,
        "duplicates": 0,
        "errors": [
            {
                "index": 0,
                "field": "user_id",
                "message": "This field is required (unless session_id is given).",
            },
            {
                "index": 1,
                "field": "order_id",
                "message": "Only purchase and refund events carry an order_id.",
            },
        ],
    }
    with tenant_context(stores.a):
        assert not Event.objects.filter(event_id__startswith="sess-").exists()


def test_erasing_a_shopper_erases_their_linked_sessions(
    stores, key_client, django_capture_on_commit_callbacks
):
    client = key_client(stores.a, scopes=("ingest", "recommend", "manage"))
    _post(client, [_event("a300", 1, session="visit-4")], django_capture_on_commit_callbacks)
    _post(
        client,
        [_event("a301", 2, session="visit-4", user="21")],
        django_capture_on_commit_callbacks,
    )

    response = client.delete("/api/v1/users/21")
    with tenant_context(stores.a):
        left = Event.objects.filter(session_id="visit-4").count()
        links = SessionLink.objects.count()
    keys = list(redis_client().scan_iter(match=f"{stores.a.schema_name}:*visit-4*"))

    assert response.status_code == 200, response.content
    assert response.json()["erased"]["sessions"] == 2
    assert (left, links, keys) == (0, 0, [])
