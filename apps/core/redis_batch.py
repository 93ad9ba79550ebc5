"""One Redis round trip per request on the serving hot path.

Parts of a request that talk to Redis (the API-key gate, a view's cache read) queue their
commands in the request's batch; the first part that needs an answer sends everything queued
so far as one pipeline. A view can queue its read before DRF authenticates the request, so the
gate and the read share a round trip; a read queued for a request that is then refused is
never sent, or its answer is simply dropped.

    batch = request_batch(request)
    pending = batch.add(lambda pipe: pipe.mget(keys))   # nothing sent yet
    ...
    (values,) = pending.result()   # sends the batch; raises redis.RedisError if it failed

Each caller handles a Redis failure its own way (the gate fails open, the cache read degrades
to the model); the batch only reports it.
"""

from __future__ import annotations

from collections.abc import Callable

import redis
from django.http import HttpRequest
from redis.client import Pipeline

from apps.core.cache import redis_client

_ATTRIBUTE = "_redis_batch"


class Pending:
    """The answers to the commands one `add` queued, in order."""

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
    def __init__(self) -> None:
        self._pipe: Pipeline | None = None
        self._pending: list[Pending] = []

    def add(self, queue: Callable[[Pipeline], object]) -> Pending:
        """Queue the commands `queue(pipe)` issues; nothing is sent until a result is needed."""
        if self._pipe is None:
            self._pipe = redis_client().pipeline(transaction=False)
        start = len(self._pipe.command_stack)
        queue(self._pipe)
        pending = Pending(self, start, len(self._pipe.command_stack))
        self._pending.append(pending)
        return pending

    def execute(self) -> None:
        """Send what is queued (one round trip) and hand each Pending its answers."""
        pipe, pending = self._pipe, self._pending
        self._pipe, self._pending = None, []
        if pipe is None:
            return
        try:
            values = pipe.execute()
        except redis.RedisError as exc:
            for item in pending:
                item._error = exc
            return
        for item in pending:
            item._values = values[item._start : item._end]


def request_batch(request: HttpRequest) -> RedisBatch:
    """The batch of this request (a DRF Request or a Django HttpRequest); created on first use."""
    request = getattr(request, "_request", request)
    batch = getattr(request, _ATTRIBUTE, None)
    if batch is None:
        batch = RedisBatch()
        setattr(request, _ATTRIBUTE, batch)
    return batch
