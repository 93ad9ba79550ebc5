"""One Redis round trip per request on the serving hot path.

Parts of a request that talk to Redis (the API-key gate, a view's cache read) queue their
commands in the request's batch; the first part that needs an answer sends everything queued
so far in one write and reads the replies. A view can queue its read before authentication, so
the gate and the read share a round trip; a read queued for a request that is then refused is
never sent, or its answer is simply dropped.

    batch = request_batch(request)
    pending = batch.add(("MGET", key_a, key_b))   # nothing sent yet
    ...
    (values,) = pending.result()   # sends the batch; raises redis.RedisError if it failed

Commands go straight to the thread's own connection (`pack_commands` / `read_response`) rather than
through redis-py's Pipeline: replies come back as Redis sends them (bytes, integers, lists,
None), without the client's per-command callbacks and bookkeeping, which cost more CPU than
the round trip itself on a cached recommendation request (bench/serving.py).

Each caller handles a Redis failure its own way (the gate fails open, the cache read degrades
to the model); the batch only reports it.
"""

from __future__ import annotations

import os
import threading

import redis
from django.http import HttpRequest

from apps.core.cache import redis_client

_ATTRIBUTE = "_redis_batch"

Command = tuple[object, ...]


class Pending:
    """The replies to the commands one `add` queued, in order."""

    __slots__ = ("_batch", "_end", "_error", "_start", "_values")

    def __init__(self, batch: RedisBatch, start: int, end: int) -> None:
        self._batch = batch
        self._start = start
        self._end = end
        self._values: list | None = None
        self._error: redis.RedisError | None = None

    def result(self) -> list:
        if self._values is None and self._error is None:
            self._batch.execute()
        if self._error is not None:
            raise self._error
        return self._values  # type: ignore[return-value]


class RedisBatch:
    __slots__ = ("_commands", "_pending")

    def __init__(self) -> None:
        self._commands: list[Command] = []
        self._pending: list[Pending] = []

    def add(self, *commands: Command) -> Pending:
        """Queue `commands` (each a tuple such as ("EXISTS", key)); nothing is sent until a
        result is needed."""
        start = len(self._commands)
        self._commands.extend(commands)
        pending = Pending(self, start, len(self._commands))
        self._pending.append(pending)
        return pending

    def execute(self) -> None:
        """Send what is queued (one round trip) and hand each Pending its replies."""
        commands, pending = self._commands, self._pending
        self._commands, self._pending = [], []
        if not commands:
            return
        try:
            values = execute_commands(commands)
        except redis.RedisError as exc:
            for item in pending:
                item._error = exc
            return
        for item in pending:
            item._values = values[item._start : item._end]


def execute_commands(commands: list[Command]) -> list:
    """Send `commands` in one write on this thread's connection and read one reply each. An
    error reply raises redis.ResponseError; any failure drops the connection (replies may be
    left unread on it) before raising, and the next call connects again."""
    conn = _thread_connection()
    try:
        conn.send_packed_command(conn.pack_commands(commands))
        return [conn.read_response() for _ in commands]
    except BaseException:
        conn.disconnect()
        raise


_owned = threading.local()


def _thread_connection() -> redis.Connection:
    """A connection of this thread's own, made with the shared client's settings (timeouts,
    health checks every 30 s, which also reconnect one a proxy dropped while idle).

    Not borrowed from the client's pool: redis-py's pool takes a lock and records four
    observability counters on every borrow and return, about 5 % of a cached recommendation
    request's time in a profile of bench/serving_profile.py. Here every exchange reads
    exactly the replies it asked for, and a failed one disconnects, so nothing is ever left
    unread on the socket. A new client (another REDIS_URL) or a forked child gets a new
    connection."""
    pool = redis_client().connection_pool
    pid = os.getpid()
    conn = getattr(_owned, "connection", None)
    if conn is None or _owned.pool is not pool or _owned.pid != pid:
        conn = pool.connection_class(**pool.connection_kwargs)
        _owned.connection, _owned.pool, _owned.pid = conn, pool, pid
    if not conn.is_connected:
        conn.connect()
    elif _closed_while_idle(conn):
        conn.disconnect()
        conn.connect()
    return conn


def _closed_while_idle(conn: redis.Connection) -> bool:
    """Readable (or unreadable) between exchanges: Redis closed it (a restart, an idle
    timeout). The check the pool makes before lending a connection."""
    try:
        return conn.can_read()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return True


def request_batch(request: HttpRequest) -> RedisBatch:
    """The batch of this request (a DRF Request or a Django HttpRequest); created on first use."""
    request = getattr(request, "_request", request)
    batch = getattr(request, _ATTRIBUTE, None)
    if batch is None:
        batch = RedisBatch()
        setattr(request, _ATTRIBUTE, batch)
    return batch
