"""A shopper's recent events in Redis: what serving needs to react to events that arrived after
the active model was trained (read-your-writes freshness), without a PostgreSQL query.

Key `recent:<user_id>` (through `apps.core.cache.tenant_key`, so it leads with the store's
schema): a Redis list of the shopper's events as they were pushed, each compact JSON
`[item_id, type, unix_ts, event_id, value]`, of which the last RECENT_EVENTS_MAX are read.
Ingestion pushes a batch after commit in one round trip (`recent_events_push`, one script
call, which also caps the list and sets its TTL); the serving hot path reads
the list in the round trip it already makes (`recent_command` / `recent_from_reply`). The
list may hold an event twice (a batch re-sent with the same event_ids): readers drop
repeated event ids. When Redis is down, `recent_from_database` answers from PostgreSQL
(index `event_user_time`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson
import redis

from apps.catalog.models import Event
from apps.core.cache import redis_client, tenant_key
from apps.core.redis_batch import execute_commands

logger = logging.getLogger(__name__)

RECENT_EVENTS_MAX = 50
# Set when a list is created and at each trim: a list this old has been through a training
# since (nightly or weekly), so its events are no longer new to the serving model.
RECENT_EVENTS_TTL_SECONDS = 14 * 86400

# (item_id, type, unix_ts, event_id, value), oldest first
RecentEvent = tuple[str, str, float, str | None, float | None]


def recent_key(user_id: str, *, schema_name: str | None = None) -> str:
    return tenant_key("recent", user_id, schema_name=schema_name)


# One call per batch, server-side: one command and one reply whatever the batch's shoppers.
# RPUSH answers the list's length: a list is trimmed back to the cap only once it holds twice
# as many entries (readers take the last RECENT_EVENTS_MAX), and its TTL is armed when it is
# created and re-armed at each trim, so most events cost a single RPUSH.
_PUSH_SCRIPT = """
local max, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
    local n = redis.call('RPUSH', key, ARGV[i + 2])
    if n > 2 * max then
        redis.call('LTRIM', key, -max, -1)
        redis.call('EXPIRE', key, ttl)
    elseif n == 1 then
        redis.call('EXPIRE', key, ttl)
    end
end
return #KEYS
"""
_PUSH_SHA = hashlib.sha1(_PUSH_SCRIPT.encode()).hexdigest()  # noqa: S324 (Redis's script id)


def recent_events_push(schema_name: str, rows: Iterable[tuple]) -> None:
    """Append committed events (`EventRow`s: event_id, user_id, item_id, type, value,
    timestamp, recommendation_id) to their shoppers' recent lists, capped at
    RECENT_EVENTS_MAX, with RECENT_EVENTS_TTL_SECONDS: one server-side script call, one round
    trip per batch. Best effort: a Redis failure is logged (serving then reads PostgreSQL
    only while Redis is unreachable)."""
    keys: list[str] = []
    entries: list[bytes] = []
    dumps = orjson.dumps
    prefix = recent_key("", schema_name=schema_name)
    for event_id, user_id, item_id, kind, value, moment, _rec in rows:
        keys.append(prefix + user_id)
        entries.append(dumps([item_id, kind, moment.timestamp(), event_id, value]))
    if not keys:
        return
    try:
        args = (len(keys), *keys, RECENT_EVENTS_MAX, RECENT_EVENTS_TTL_SECONDS, *entries)
        try:
            execute_commands([("EVALSHA", _PUSH_SHA, *args)])
        except redis.exceptions.NoScriptError:
            execute_commands([("EVAL", _PUSH_SCRIPT, *args)])
    except redis.RedisError:
        logger.warning("recent events not pushed: Redis unavailable", exc_info=True)


def recent_command(schema_name: str, user_id: str) -> tuple[object, ...]:
    """The Redis command serving adds to its round trip; its reply goes to
    `recent_from_reply`."""
    return ("LRANGE", recent_key(user_id, schema_name=schema_name), -RECENT_EVENTS_MAX, -1)


def recent_from_reply(reply: list[bytes], since: float) -> list[RecentEvent]:
    """The events of the LRANGE reply with a timestamp after `since` (epoch seconds), oldest
    first, each event id once."""
    events: list[RecentEvent] = []
    ids: set[str] = set()
    loads = orjson.loads
    for raw in reply:
        try:
            item_id, kind, ts, event_id, value = loads(raw)
        except (orjson.JSONDecodeError, ValueError, TypeError):
            continue
        if ts <= since:
            continue
        if event_id is not None:
            if event_id in ids:
                continue
            ids.add(event_id)
        events.append((item_id, kind, ts, event_id, value))
    events.sort(key=lambda event: event[2])
    return events


def recent_from_database(user_id: str, since: float) -> list[RecentEvent]:
    """The shopper's last RECENT_EVENTS_MAX events after `since` from PostgreSQL (Redis
    down), oldest first."""
    rows = (
        Event.objects.filter(user_id=user_id, timestamp__gt=datetime.fromtimestamp(since, UTC))
        .order_by("-timestamp")
        .values_list("item_id", "type", "timestamp", "event_id", "value")[:RECENT_EVENTS_MAX]
    )
    return [
        (item, kind, moment.timestamp(), event_id, value)
        for item, kind, moment, event_id, value in rows
    ][::-1]


def shopper_recent_erase(user_id: str) -> int:
    """Eraser (apps.core.erasure): the shopper's recent-events list. Raises redis.RedisError."""
    return redis_client().delete(recent_key(user_id))
