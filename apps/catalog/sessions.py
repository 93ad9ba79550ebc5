"""Browsing sessions: an anonymous visitor's events carry a `session_id` (and no `user_id`);
an event carrying both links the session to the shopper (`SessionLink`, first shopper wins).
Ingestion writes the links (apps.catalog.services) and the Redis lists and link keys
(apps.catalog.recent); this module reads a session's events, and exports and erases a
shopper's sessions (registered in apps.core.erasure by CatalogConfig.ready).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apps.catalog.models import Event, SessionLink
from apps.catalog.recent import (
    RECENT_EVENTS_MAX,
    RecentEvent,
    session_link_key,
    session_recent_key,
)
from apps.catalog.selectors import EVENT_PUBLIC_FIELDS
from apps.core.cache import redis_client


def session_recent_from_database(session_id: str, since: float) -> list[RecentEvent]:
    """The session's last RECENT_EVENTS_MAX events after `since` from PostgreSQL (Redis down),
    oldest first (index event_session_time)."""
    rows = (
        Event.objects.filter(
            session_id=session_id, timestamp__gt=datetime.fromtimestamp(since, UTC)
        )
        .order_by("-timestamp")
        .values_list("item_id", "type", "timestamp", "event_id", "value")[:RECENT_EVENTS_MAX]
    )
    return [
        (item, kind, moment.timestamp(), event_id, value)
        for item, kind, moment, event_id, value in rows
    ][::-1]


def shopper_sessions_erase(user_id: str) -> int:
    """Eraser (apps.core.erasure): the sessions linked to the shopper: their anonymous events,
    the links, and the sessions' Redis lists and link keys (the shopper's own events and recent
    list have their own erasers). Raises redis.RedisError, before PostgreSQL is touched."""
    sessions = list(
        SessionLink.objects.filter(user_id=user_id).values_list("session_id", flat=True)
    )
    if not sessions:
        return 0
    keys = [session_recent_key(s) for s in sessions] + [session_link_key(s) for s in sessions]
    redis_client().delete(*keys)
    events, _ = Event.objects.filter(session_id__in=sessions, user_id__isnull=True).delete()
    links, _ = SessionLink.objects.filter(user_id=user_id).delete()
    return events + links


def shopper_sessions_export(user_id: str) -> list[dict[str, Any]]:
    """Export section `sessions` (apps.core.erasure.register_export): every session linked to
    the shopper, oldest link first, with its anonymous events oldest first. Those events carry
    no user id, so the export's own `events` section (the shopper's user id) misses them,
    though they count as the shopper's. Events of the session that carry a user id are in
    that user's `events`. [] when no session is linked to the shopper."""
    links = list(
        SessionLink.objects.filter(user_id=user_id)
        .order_by("created_at", "id")
        .values_list("session_id", "created_at")
    )
    if not links:
        return []
    events: dict[str, list[dict[str, Any]]] = {session_id: [] for session_id, _ in links}
    rows = (
        Event.objects.filter(session_id__in=list(events), user_id__isnull=True)
        .order_by("timestamp", "id")
        .values(*EVENT_PUBLIC_FIELDS)
    )
    for row in rows:
        events[row["session_id"]].append(row)
    return [
        {"session_id": session_id, "linked_at": linked_at, "events": events[session_id]}
        for session_id, linked_at in links
    ]
