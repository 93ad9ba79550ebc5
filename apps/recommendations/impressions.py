"""The served-list log, off the request path.

A request appends one small record to an in-process buffer (no I/O). The process's flusher
thread (apps.core.flusher) pushes the buffer to a Redis list per store every second (or sooner
when it fills): one RPUSH per
store per second per process, marking the store in the same pipeline (apps.core.activity).
A periodic task sends `impressions_persist` to the marked stores only, which moves the list
into PostgreSQL with COPY. When Redis is down the buffer is kept, up to a bound; beyond
it the oldest records are dropped (and counted in the log): serving never waits on the log.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import UTC, datetime

import orjson
import redis
from django.db import connection, transaction

from apps.core.activity import Activity, store_mark_active, stores_pending_mark, sweep_due
from apps.core.cache import redis_client
from apps.core.db.copy import raw_copy
from apps.core.flusher import PeriodicFlusher
from apps.recommendations.cache import impressions_key, lock_key

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_SECONDS = 1.0
FLUSH_SIZE = 1_000
MAX_BUFFERED = 100_000
PERSIST_BATCH = 5_000
PERSIST_MAX_BATCHES = 200

_buffer: dict[str, list[bytes]] = {}
_buffered = 0
_lock = threading.Lock()


def impression_log(
    *,
    schema_name: str,
    recommendation_id: str,
    surface: str,
    user_id: str,
    model_version_number: int | None,
    strategy: str,
    item_ids: list[str],
    experiment_id: int | None = None,
    arm_id: int | None = None,
    session_id: str = "",
) -> None:
    """Queue one served list (`session_id`: the session a session list was served to). Never
    raises, never blocks on I/O."""
    global _buffered
    record = orjson.dumps(
        [
            recommendation_id,
            surface,
            user_id,
            model_version_number,
            strategy,
            experiment_id,
            arm_id,
            item_ids,
            int(datetime.now(UTC).timestamp() * 1000),
            session_id,
        ]
    )
    with _lock:
        _buffer.setdefault(schema_name, []).append(record)
        _buffered += 1
        full = _buffered >= FLUSH_SIZE
    _flusher.ensure_started()
    if full:
        _flusher.wake()


def impressions_flush() -> int:
    """Push buffered records to Redis now; returns how many were pushed. Records of a store
    whose push failed go back to the buffer (bounded)."""
    global _buffered
    with _lock:
        pending = dict(_buffer)
        _buffer.clear()
        _buffered = 0
    if not pending:
        return 0
    pushed = 0
    try:
        client = redis_client()
        pipe = client.pipeline(transaction=False)
        for schema_name, records in pending.items():
            pipe.rpush(impressions_key(schema_name), *records)
        store_mark_active(pipe, Activity.IMPRESSIONS, pending)
        pipe.execute()
        pushed = sum(len(records) for records in pending.values())
    except redis.RedisError as exc:
        _requeue(pending)
        logger.warning("impressions kept in memory: Redis unavailable (%s)", exc)
    return pushed


def _requeue(pending: dict[str, list[bytes]]) -> None:
    global _buffered
    with _lock:
        for schema_name, records in pending.items():
            merged = records + _buffer.get(schema_name, [])
            _buffer[schema_name] = merged
        _buffered = sum(len(records) for records in _buffer.values())
        dropped = 0
        while _buffered > MAX_BUFFERED:
            biggest = max(_buffer, key=lambda s: len(_buffer[s]))
            excess = min(len(_buffer[biggest]), _buffered - MAX_BUFFERED)
            del _buffer[biggest][:excess]
            _buffered -= excess
            dropped += excess
    if dropped:
        logger.warning("impressions dropped: buffer full while Redis is unavailable (%d)", dropped)


_flusher = PeriodicFlusher("impression-flush", impressions_flush, FLUSH_INTERVAL_SECONDS)


_COPY = (
    "COPY recommendations_impression (recommendation_id, surface, user_id, "
    "model_version_number, strategy, experiment_id, arm_id, item_ids, served_at, session_id) "
    "FROM STDIN"
)
_COPY_TYPES = [
    "text", "text", "text", "int8", "text", "int8", "int8", "text[]", "timestamptz", "text"
]  # fmt: skip


def impressions_persist(*, schema_name: str | None = None) -> int:
    """Move the store's queued impressions from Redis into PostgreSQL (COPY, batches of
    PERSIST_BATCH). A batch is removed from Redis only after its rows are committed; a Redis
    lock keeps two runs of one store from copying the same batch. Returns the rows written.
    Raises redis.RedisError when Redis is unreachable (the task retries on its next beat)."""
    schema = schema_name or connection.schema_name
    client = redis_client()
    key = impressions_key(schema)
    lock = client.lock(lock_key(schema, "persist"), timeout=300, blocking=False)
    if not lock.acquire(blocking=False):
        # Another run holds the store and may stop before what was pushed since: retry later.
        stores_pending_mark(Activity.IMPRESSIONS, [schema])
        return 0
    written = 0
    try:
        for _ in range(PERSIST_MAX_BATCHES):
            raw = client.lrange(key, 0, PERSIST_BATCH - 1)
            if not raw:
                break
            rows = []
            for record in raw:
                try:
                    r = orjson.loads(record)
                    served = datetime.fromtimestamp(r[8] / 1000, tz=UTC)
                    # records queued by a process of the previous release have no session
                    session = r[9] if len(r) > 9 else ""
                    rows.append((r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], served, session))
                except (orjson.JSONDecodeError, IndexError, TypeError, ValueError):
                    logger.warning("unreadable impression record skipped")
            with (
                transaction.atomic(),
                connection.cursor() as cursor,
                raw_copy(cursor, _COPY, _COPY_TYPES) as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            client.ltrim(key, len(raw), -1)
            written += len(rows)
        else:  # PERSIST_MAX_BATCHES copied: the rest waits for the next run
            stores_pending_mark(Activity.IMPRESSIONS, [schema])
    finally:
        with contextlib.suppress(redis.exceptions.LockError):
            lock.release()
    return written


SWEEP_SECONDS = 3600


def impressions_stranded() -> list[str]:
    """Once an hour (`sweep_due`): the stores whose impression list is not empty, found with one
    pipelined LLEN over every store; otherwise []. Catches a store whose mark was lost, so its
    records wait an hour at most."""
    if not sweep_due(Activity.IMPRESSIONS, every_seconds=SWEEP_SECONDS):
        return []
    from apps.tenants.selectors import store_list

    schemas = list(store_list().values_list("schema_name", flat=True))
    pipe = redis_client().pipeline(transaction=False)
    for schema_name in schemas:
        pipe.llen(impressions_key(schema_name))
    return [schema for schema, length in zip(schemas, pipe.execute(), strict=True) if length]
