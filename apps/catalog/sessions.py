"""Browsing sessions: an anonymous visitor's events carry a `session_id` (and no `user_id`);
an event carrying both links the session to the shopper (`SessionLink`, first shopper wins).
Ingestion writes the links (apps.catalog.services) and the Redis lists and link keys
(apps.catalog.recent); this module reads a session's events and erases a shopper's sessions.
"""

from __future__ import annotations

from datetime import UTC, datetime

from apps.catalog.models import Event, SessionLink
from apps.catalog.recent import (
    RECENT_EVENTS_MAX,
    RecentEvent,
    session_link_key,
    session_recent_key,
)
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
