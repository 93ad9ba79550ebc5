"""Live event counters of a store (Redis) and their push to the store's open dashboards.

Counters: one Redis hash per store and UTC day, `tenant_key("counters", "YYYY-MM-DD")`, field =
event type, value = events accepted that day (by receive time). Kept for COUNTER_TTL_SECONDS.

Pushes go through apps.core.live, coalesced per process: at most one per store every
LIVE_PUBLISH_INTERVAL_SECONDS, always carrying the latest counters, sent from the process's
flusher thread so an ingest request never waits on the channel layer. A trailing push follows
the last batch.
"""

from __future__ import annotations

from datetime import date

from apps.catalog.selectors import counters_key
from apps.core.cache import redis_client
from apps.core.live import live_flush, store_push_coalesced

COUNTER_TTL_SECONDS = 8 * 24 * 3600


def event_counters_add(*, schema_name: str, day: date, counts: dict[str, int]) -> dict[str, int]:
    """Add `counts` (type → events) to the store's counters of `day` in one Redis round trip;
    returns the day's counters after the increment."""
    key = counters_key(day, schema_name=schema_name)
    pipe = redis_client().pipeline(transaction=False)
    for kind, count in counts.items():
        pipe.hincrby(key, kind, count)
    pipe.expire(key, COUNTER_TTL_SECONDS)
    pipe.hgetall(key)
    totals = pipe.execute()[-1]
    return {field.decode(): int(value) for field, value in totals.items()}


def event_counters_publish(*, schema_name: str, day: date, counters: dict[str, int]) -> None:
    store_push_coalesced(
        schema_name=schema_name,
        payload={"type": "counters", "date": day.isoformat(), "events_today": counters},
    )


def event_counters_flush() -> None:
    """Send pending pushes now, in the caller's thread (end of an import command, tests)."""
    live_flush()
