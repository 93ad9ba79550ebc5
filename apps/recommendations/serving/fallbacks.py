"""Lists read from PostgreSQL when no model answers: popular and trending items (cached per
process), and a shopper's seen and recent items."""

from __future__ import annotations

import contextlib
import time

import orjson
from django.db import connection
from redis.exceptions import RedisError

from apps.catalog.models import Event
from apps.core.cache import redis_client, tenant_key
from apps.recommendations.serving.state import (
    FALLBACK_TTL_SECONDS,
    Fallback,
    _fallbacks,
)

# Relative to the newest event of a known shopper: the shoppers' last_seen_at index answers it
# at once, where max(timestamp) over catalog_event reads every event (only a BRIN index on
# it), which is read only when no shopper has a last visit (COALESCE stops at the first value).
# Anonymous events never count here anyway (count(DISTINCT user_id) skips NULL).
_POPULAR_SQL = """
SELECT e.item_id, count(DISTINCT e.user_id) AS shoppers
FROM catalog_event e
WHERE e."timestamp" >= coalesce(
    (SELECT max(last_seen_at) FROM catalog_shopper), (SELECT max("timestamp") FROM catalog_event)
) - %s * interval '1 day'
GROUP BY e.item_id
ORDER BY shoppers DESC, e.item_id
LIMIT 1000
"""
# A list that took SHARED_AFTER_SECONDS or more to read (a big store's 90 days are millions of
# events) is shared by the store's processes through Redis for SHARED_TTL_SECONDS, instead of
# being read again once a minute per process. A small store's list stays per process, so a new
# store's first events show within the minute.
SHARED_AFTER_SECONDS = 0.5
SHARED_TTL_SECONDS = 600


def db_list(schema_name: str, kind: str) -> list[tuple[str, float]]:
    """Most popular (90 days) or trending (7 days) items by distinct shoppers, relative to the
    store's newest event; cached per process for FALLBACK_TTL_SECONDS (and shared, when slow
    to read, for SHARED_TTL_SECONDS)."""
    key = (schema_name, kind)
    cached = _fallbacks.get(key)
    if cached is not None and cached.expires > time.monotonic():
        return cached.items
    shared = tenant_key("fallback", kind, schema_name=schema_name)
    try:
        raw = redis_client().get(shared)
    except RedisError:
        raw = None
    if raw is not None:
        items = [(item, float(n)) for item, n in orjson.loads(raw)]
    else:
        days = 7 if kind == "trending" else 90
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(_POPULAR_SQL, [days])
            items = [(item, float(n)) for item, n in cursor.fetchall()]
        if time.monotonic() - started >= SHARED_AFTER_SECONDS:
            # Redis down: served from this process's copy; the next process reads its own.
            with contextlib.suppress(RedisError):
                redis_client().set(shared, orjson.dumps(items), ex=SHARED_TTL_SECONDS)
    _fallbacks[key] = Fallback(time.monotonic() + FALLBACK_TTL_SECONDS, items)
    return items


def db_seen(user_id: str) -> set[str]:
    return set(
        Event.objects.filter(user_id=user_id)
        .order_by("-timestamp")
        .values_list("item_id", flat=True)[:1000]
    )


def db_recent(user_id: str, n: int = 5) -> list[str]:
    """The shopper's last `n` distinct items, oldest first (a session for cold shoppers)."""
    recent: list[str] = []
    rows = Event.objects.filter(user_id=user_id).order_by("-timestamp")
    for item in rows.values_list("item_id", flat=True)[:50]:
        if item not in recent:
            recent.append(item)
        if len(recent) >= n:
            break
    return list(reversed(recent))
