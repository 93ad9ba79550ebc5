"""Lists read from PostgreSQL when no model answers: popular and trending items (cached per
process), and a shopper's seen and recent items."""

from __future__ import annotations

import time

from django.db import connection

from apps.catalog.models import Event
from apps.recommendations.serving.state import (
    FALLBACK_TTL_SECONDS,
    Fallback,
    _fallbacks,
)

_POPULAR_SQL = """
SELECT e.item_id, count(DISTINCT e.user_id) AS shoppers
FROM catalog_event e
WHERE e."timestamp" >= (SELECT max("timestamp") FROM catalog_event) - %s * interval '1 day'
GROUP BY e.item_id
ORDER BY shoppers DESC, e.item_id
LIMIT 1000
"""


def db_list(schema_name: str, kind: str) -> list[tuple[str, float]]:
    """Most popular (90 days) or trending (7 days) items by distinct shoppers, relative to the
    store's newest event; cached per process for FALLBACK_TTL_SECONDS."""
    key = (schema_name, kind)
    cached = _fallbacks.get(key)
    if cached is not None and cached.expires > time.monotonic():
        return cached.items
    days = 7 if kind == "trending" else 90
    with connection.cursor() as cursor:
        cursor.execute(_POPULAR_SQL, [days])
        items = [(item, float(n)) for item, n in cursor.fetchall()]
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
