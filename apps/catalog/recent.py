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

Key `recent-at:<user_id>` (`recent_latest_key`): `<newest event timestamp> <events pushed>`,
the newest event timestamp ever pushed to the shopper's list and how many entries were pushed
to it, kept by the same script calls (with the list's TTL). Serving reads it in the MGET it
already sends and asks for the list only when the timestamp is after the model's training
cut-off (`recent_is_new`), so a shopper with nothing new costs no LRANGE and no JSON parsing;
the whole value changes with every event pushed (a backfilled older one too), so it also
names what a re-scored list reflects (apps/recommendations/serving/fresh.py). A list pushed
before this key existed is seen from the shopper's next event on.

Sessions: an event with a `session_id` also goes to the session's list `srecent:<session_id>`
(same entries, cap and TTL), read by the session endpoint. `slink:<session_id>` holds the
shopper a session is linked to (apps.catalog.models.SessionLink, first shopper wins): the
batch that creates a link copies the session's list into the shopper's, and later anonymous
events of a linked session are pushed to the shopper's list too, so the shopper's fresh list
reflects their sessions without a read-time merge. All of it in the batch's one script call.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson
import redis
from django.db.models import Q

from apps.catalog.models import Event, SessionLink
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


def recent_latest_key(user_id: str, *, schema_name: str | None = None) -> str:
    return tenant_key("recent-at", user_id, schema_name=schema_name)


def recent_is_new(latest: bytes | None, since: float) -> bool:
    """Whether the `recent_latest_key` value says the shopper has an event after `since`."""
    return latest is not None and float(latest.split(b" ", 1)[0]) > since


def session_recent_key(session_id: str, *, schema_name: str | None = None) -> str:
    return tenant_key("srecent", session_id, schema_name=schema_name)


def session_link_key(session_id: str, *, schema_name: str | None = None) -> str:
    return tenant_key("slink", session_id, schema_name=schema_name)


# One call per batch, server-side: one command and one reply whatever the batch's shoppers.
# RPUSH answers the list's length: a list is trimmed back to the cap only once it holds twice
# as many entries (readers take the last RECENT_EVENTS_MAX), and its TTL is armed when it is
# created and re-armed at each trim, so most events cost a single RPUSH.
# `mark` notes the newest timestamp and the number of entries pushed to each shopper list
# (prefix `<schema>:..:recent:`); `marks_write` raises each shopper's `recent-at:` timestamp to
# it and adds the entries to its count, one GET and SET per shopper and batch.
_MARK_LUA = """
local marks = {}
local counts = {}
local function mark(key, entry)
    counts[key] = (counts[key] or 0) + 1
    local ok, event = pcall(cjson.decode, entry)
    if ok and type(event) == 'table' and type(event[3]) == 'number' then
        if not marks[key] or event[3] > marks[key] then marks[key] = event[3] end
    end
end
local function marks_write(prefix, ttl)
    local at_prefix = string.sub(prefix, 1, -2) .. '-at:'
    for key, n in pairs(counts) do
        local at = at_prefix .. string.sub(key, #prefix + 1)
        local raw = redis.call('GET', at)
        local latest, pushed = nil, 0
        if raw then
            local space = string.find(raw, ' ', 1, true)
            if space then
                latest = tonumber(string.sub(raw, 1, space - 1))
                pushed = tonumber(string.sub(raw, space + 1)) or 0
            else
                latest = tonumber(raw)
            end
        end
        local ts = marks[key]
        if ts and (not latest or ts > latest) then latest = ts end
        if latest then
            redis.call('SET', at, string.format('%.6f %d', latest, pushed + n), 'EX', ttl)
        end
    end
end
"""
# ARGV: max, ttl, the entries, then the shopper-list prefix.
_PUSH_SCRIPT = (
    _MARK_LUA
    + """
local max, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
    local n = redis.call('RPUSH', key, ARGV[i + 2])
    if n > 2 * max then
        redis.call('LTRIM', key, -max, -1)
        redis.call('EXPIRE', key, ttl)
    elseif n == 1 then
        redis.call('EXPIRE', key, ttl)
    end
    mark(key, ARGV[i + 2])
end
marks_write(ARGV[#KEYS + 3], ttl)
return #KEYS
"""
)
_PUSH_SHA = hashlib.sha1(_PUSH_SCRIPT.encode()).hexdigest()  # noqa: S324 (Redis's script id)


# Batches with sessions: one operation per key. ARGV[3] is the shopper-list prefix; operation
# i is ARGV[3 + i], its argument ARGV[3 + #KEYS + i]. `p`: push the entry to KEYS[i]. `s`:
# push the entry to the linked shopper's list when KEYS[i] (a session's link) is set. `l`:
# link KEYS[i] (slink) to the shopper unless linked already; a new link copies the session's
# list (the next key, pushed by the following `p`) into the shopper's list.
_SESSION_PUSH_SCRIPT = (
    _MARK_LUA
    + """
local max, ttl, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local n = #KEYS
local function push(key, entry)
    local len = redis.call('RPUSH', key, entry)
    if len > 2 * max then
        redis.call('LTRIM', key, -max, -1)
        redis.call('EXPIRE', key, ttl)
    elseif len == 1 then
        redis.call('EXPIRE', key, ttl)
    end
    if string.sub(key, 1, #prefix) == prefix then mark(key, entry) end
end
for i, key in ipairs(KEYS) do
    local op, arg = ARGV[3 + i], ARGV[3 + n + i]
    if op == 'p' then
        push(key, arg)
    elseif op == 's' then
        local user = redis.call('GET', key)
        if user then push(prefix .. user, arg) end
    elseif op == 'l' then
        if redis.call('SET', key, arg, 'NX', 'EX', ttl) then
            for _, entry in ipairs(redis.call('LRANGE', KEYS[i + 1], -max, -1)) do
                push(prefix .. arg, entry)
            end
        else
            redis.call('EXPIRE', key, ttl)
        end
    end
end
marks_write(prefix, ttl)
return n
"""
)
_SESSION_PUSH_SHA = hashlib.sha1(_SESSION_PUSH_SCRIPT.encode()).hexdigest()  # noqa: S324


def _script_call(script: str, sha: str, *args: object) -> None:
    try:
        try:
            execute_commands([("EVALSHA", sha, *args)])
        except redis.exceptions.NoScriptError:
            execute_commands([("EVAL", script, *args)])
    except redis.RedisError:
        logger.warning("recent events not pushed: Redis unavailable", exc_info=True)


def recent_events_push(schema_name: str, rows: Iterable[tuple]) -> None:
    """Append committed events (`EventRow`s: event_id, user_id, item_id, type, value,
    timestamp, recommendation_id, session_id, order_id) to their shoppers' and sessions'
    recent lists, capped at RECENT_EVENTS_MAX, with RECENT_EVENTS_TTL_SECONDS, and link
    sessions to shoppers (see the module docstring): one server-side script call, one round
    trip per batch. Best effort: a Redis failure is logged (serving then reads PostgreSQL
    only while Redis is unreachable)."""
    rows = list(rows)
    if any(row[7] is not None for row in rows):
        _session_events_push(schema_name, rows)
        return
    keys: list[str] = []
    entries: list[bytes] = []
    dumps = orjson.dumps
    prefix = recent_key("", schema_name=schema_name)
    for event_id, user_id, item_id, kind, value, moment, *_rest in rows:
        keys.append(prefix + user_id)
        entries.append(dumps([item_id, kind, moment.timestamp(), event_id, value]))
    if not keys:
        return
    args = (len(keys), *keys, RECENT_EVENTS_MAX, RECENT_EVENTS_TTL_SECONDS, *entries, prefix)
    _script_call(_PUSH_SCRIPT, _PUSH_SHA, *args)


def _session_events_push(schema_name: str, rows: list[tuple]) -> None:
    keys: list[str] = []
    ops: list[str] = []
    values: list[bytes | str] = []
    user_prefix = recent_key("", schema_name=schema_name)
    session_prefix = session_recent_key("", schema_name=schema_name)
    link_prefix = session_link_key("", schema_name=schema_name)
    for event_id, user_id, item_id, kind, value, moment, _rec, session_id, _order in rows:
        entry = orjson.dumps([item_id, kind, moment.timestamp(), event_id, value])
        if session_id is not None:
            if user_id is not None:
                keys.append(link_prefix + session_id)
                ops.append("l")
                values.append(user_id)
            keys.append(session_prefix + session_id)
            ops.append("p")
            values.append(entry)
            if user_id is None:
                keys.append(link_prefix + session_id)
                ops.append("s")
                values.append(entry)
        if user_id is not None:
            keys.append(user_prefix + user_id)
            ops.append("p")
            values.append(entry)
    args = (len(keys), *keys, RECENT_EVENTS_MAX, RECENT_EVENTS_TTL_SECONDS, user_prefix)
    _script_call(_SESSION_PUSH_SCRIPT, _SESSION_PUSH_SHA, *args, *ops, *values)


def recent_command(schema_name: str, user_id: str) -> tuple[object, ...]:
    """The Redis command serving sends when `recent_is_new`; its reply goes to
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
    down), their linked sessions' anonymous events included, oldest first."""
    sessions = SessionLink.objects.filter(user_id=user_id).values("session_id")
    rows = (
        Event.objects.filter(
            Q(user_id=user_id) | Q(user_id__isnull=True, session_id__in=sessions),
            timestamp__gt=datetime.fromtimestamp(since, UTC),
        )
        .order_by("-timestamp")
        .values_list("item_id", "type", "timestamp", "event_id", "value")[:RECENT_EVENTS_MAX]
    )
    return [
        (item, kind, moment.timestamp(), event_id, value)
        for item, kind, moment, event_id, value in rows
    ][::-1]


def shopper_recent_erase(user_id: str) -> int:
    """Eraser (apps.core.erasure): the shopper's recent-events list and its newest-event
    key; counts the list. Raises redis.RedisError."""
    pipe = redis_client().pipeline(transaction=False)
    pipe.delete(recent_key(user_id))
    pipe.delete(recent_latest_key(user_id))
    return pipe.execute()[0]
