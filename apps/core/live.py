"""Live updates to a store's open dashboards: the one publisher.

Domain apps announce here; the dashboard's websocket consumer subscribes to the store's group
(`store_group`) and relays each `{"type": "store.event", "payload": ...}` message. Pushes are
best effort: a Channels/Redis outage loses the live update only (pages still show the stored
state), so it is logged, never raised.

- `store_push`: now, in the caller's thread (training progress, after-commit callbacks).
- `store_push_on_commit`: once the current transaction commits (never inside it).
- `store_push_coalesced`: off the caller's thread, on the process's flusher (apps.core.flusher):
  at most one push per store and key every LIVE_PUBLISH_INTERVAL_SECONDS, always the latest
  payload, with a trailing push after the last one (live counters on the ingest path).
- `store_access_revoke_on_commit`: once the current transaction commits, close the store's open
  dashboards of one user (removed from the store) or of everyone (store suspended). Unlike the
  pushes, this is a `{"type": "access.revoked"}` message the consumer acts on, never relays.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction

from apps.core.flusher import PeriodicFlusher

logger = logging.getLogger(__name__)


def store_group(schema_name: str) -> str:
    """The Channels group of one store; every push to a store goes through this name."""
    return f"store.{schema_name}"


def member_group(schema_name: str, user_id: int | str) -> str:
    """The Channels group of one user's sockets on one store. Its own prefix, and schema names
    hold no dot, so it never collides with a store group or another store's member group."""
    return f"member.{schema_name}.{user_id}"


def store_access_revoke_on_commit(*, schema_name: str, user_id: int | str | None = None) -> None:
    """Once the current transaction commits, close the open dashboard sockets of `user_id` on
    the store (every socket of the store when `user_id` is None). Best effort, like a push."""
    group = store_group(schema_name) if user_id is None else member_group(schema_name, user_id)

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(group, {"type": "access.revoked"})
        except Exception:
            logger.warning(
                "access revoke push failed", exc_info=True, extra={"schema": schema_name}
            )

    transaction.on_commit(send)


def _send(schema_name: str, payload: dict[str, Any], *, layer=None, loop=None) -> None:
    layer = layer or get_channel_layer()
    if layer is None:
        return
    message = {"type": "store.event", "payload": payload}
    try:
        if loop is None:
            async_to_sync(layer.group_send)(store_group(schema_name), message)
        else:
            loop.run_until_complete(layer.group_send(store_group(schema_name), message))
    except Exception:
        logger.warning("live push failed", exc_info=True, extra={"schema": schema_name})


def store_push(*, schema_name: str, payload: dict[str, Any], layer=None) -> None:
    """Send `payload` to every open dashboard socket of the store now (best effort)."""
    _send(schema_name, payload, layer=layer)


def store_push_on_commit(payload: dict[str, Any], *, schema_name: str | None = None) -> None:
    """Push to the connection's (or the given) store once the current transaction commits."""
    schema = schema_name or connection.schema_name
    transaction.on_commit(lambda: store_push(schema_name=schema, payload=payload))


_pending: dict[tuple[str, str], dict[str, Any]] = {}
_pending_lock = threading.Lock()


def store_push_coalesced(*, schema_name: str, payload: dict[str, Any], key: str = "") -> None:
    """Queue `payload` for the store; a later payload of the same store and `key` (default:
    the payload's type) replaces it before it is sent. Never blocks on I/O."""
    with _pending_lock:
        _pending[(schema_name, key or payload.get("type", ""))] = payload
    _flusher.wake()


def live_flush() -> None:
    """Send the queued coalesced pushes now, in the caller's thread (end of an import command,
    tests)."""
    _flush()


def _flush(loop=None) -> None:
    global _pending
    with _pending_lock:
        pending, _pending = _pending, {}
    for (schema_name, _key), payload in pending.items():
        _send(schema_name, payload, loop=loop)


_flusher_loop: tuple[int, asyncio.AbstractEventLoop] | None = None


def _flush_in_background() -> None:
    # The flusher keeps one event loop per process: the channel layer's connections belong to
    # it (a forked child makes its own).
    global _flusher_loop
    if _flusher_loop is None or _flusher_loop[0] != os.getpid() or _flusher_loop[1].is_closed():
        _flusher_loop = (os.getpid(), asyncio.new_event_loop())
    _flush(loop=_flusher_loop[1])


_flusher = PeriodicFlusher(
    "live-push",
    _flush_in_background,
    settings.LIVE_PUBLISH_INTERVAL_SECONDS,
    min_gap_seconds=settings.LIVE_PUBLISH_INTERVAL_SECONDS,
)
