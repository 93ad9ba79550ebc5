"""A shopper's GDPR export includes the sessions linked to them, with their anonymous events
(those carry no user id, so the export's `events` misses them), and nothing of another store."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.catalog.models import SessionLink
from apps.core.cache import redis_client
from tests.recommendations.test_sessions import _event, _post

pytestmark = pytest.mark.django_db

EXPORT = "/api/v1/users/{}/export"


@pytest.fixture(autouse=True)
def _no_lists_left(stores):
    yield
    client = redis_client()
    for tenant in (stores.a, stores.b):
        for family in ("recent", "recent-at", "fresh", "srecent", "slink"):
            for key in client.scan_iter(match=f"{tenant.schema_name}:*:{family}:*", count=1000):
                client.delete(key)


def _rows(events: list[dict]) -> list[tuple]:
    return [(e["event_id"], e["user_id"], e["session_id"], e["item_id"]) for e in events]


def test_the_export_lists_the_linked_sessions_with_their_anonymous_events(
    stores, key_client, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    a = key_client(stores.a, scopes=("ingest", "recommend"))
    b = key_client(stores.b, scopes=("ingest", "recommend"))
    # given, in store A, two anonymous views in session x-1, then shopper 22 signing in there;
    # and a session x-2 nobody signed in to
    _post(a, [_event("a300", 1, session="x-1"), _event("a301", 2, session="x-1")], capture)
    _post(a, [_event("a302", 3, session="x-1", user="22")], capture)
    _post(a, [_event("a303", 4, session="x-2")], capture)
    # and, in store B, a session with the same id, also linked to a shopper 22 of store B
    _post(b, [_event("b310", 5, session="x-1")], capture)
    _post(b, [_event("b311", 6, session="x-1", user="22")], capture)

    # when store A exports shopper 22
    response = a.get(EXPORT.format(22))

    # then the session comes with its two anonymous events; the signed-in one is in `events`
    assert response.status_code == 200, response.content
    body = response.json()
    sessions = body["sessions"]
    assert [s["session_id"] for s in sessions] == ["x-1"]
    assert _rows(sessions[0]["events"]) == [
        ("sess-x-1-None-a300-1", None, "x-1", "a300"),
        ("sess-x-1-None-a301-2", None, "x-1", "a301"),
    ]
    with tenant_context(stores.a):
        linked_at = SessionLink.objects.get(session_id="x-1").created_at
    assert sessions[0]["linked_at"].replace("Z", "+00:00") == linked_at.isoformat()
    assert ("sess-x-1-22-a302-3", "22", "x-1", "a302") in _rows(body["events"])
    # nothing of store B's session of the same id, nor of the unlinked session
    exported = str(body)
    for foreign in ("b310", "b311", "x-2", "a303"):
        assert foreign not in exported


def test_a_shopper_without_linked_sessions_exports_an_empty_section(stores, key_client):
    response = key_client(stores.a).get(EXPORT.format(23))

    assert response.status_code == 200, response.content
    assert response.json()["sessions"] == []


def test_an_anonymous_session_alone_is_exported_once_linked(
    stores, key_client, django_capture_on_commit_callbacks
):
    # given a shopper id nobody has used, whose only history is a signed-in session event
    capture = django_capture_on_commit_callbacks
    client = key_client(stores.a, scopes=("ingest", "recommend"))
    before = client.get(EXPORT.format("newcomer-1"))
    _post(client, [_event("a300", 1, session="x-3")], capture)
    _post(client, [_event("a301", 2, session="x-3", user="newcomer-1")], capture)

    after = client.get(EXPORT.format("newcomer-1")).json()

    assert before.status_code == 404
    assert [s["session_id"] for s in after["sessions"]] == ["x-3"]
    assert [e["item_id"] for e in after["sessions"][0]["events"]] == ["a300"]
    assert [e["item_id"] for e in after["events"]] == ["a301"]
