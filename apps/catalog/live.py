"""Live event counters of a store (Redis) and their push to the store's dashboard group.

Counters: one Redis hash per store and UTC day, `tenant_key("counters", "YYYY-MM-DD")`, field =
event type, value = events accepted that day (by receive time). Kept for COUNTER_TTL_SECONDS.

Pushes are coalesced per process: at most one `group_send` per store every
LIVE_PUBLISH_INTERVAL_SECONDS, always carrying the latest counters, sent from a background thread
so an ingest request never waits on the channel layer. A trailing push follows the last batch.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from datetime import date
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from apps.catalog.selectors import counters_key
from apps.core.cache import redis_client
from apps.dashboard.consumers import store_group

logger = logging.getLogger(__name__)

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
    _publisher.publish(
        store_group(schema_name),
        {"type": "counters", "date": day.isoformat(), "events_today": counters},
    )


def event_counters_flush() -> None:
    """Send pending pushes now, in the caller's thread (end of an import command, tests)."""
    _publisher.flush()


class _CoalescingPublisher:
    def __init__(self) -> None:
        self._pending: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def publish(self, group: str, payload: dict[str, Any]) -> None:
        with self._lock:
            self._pending[group] = payload
            # A forked worker (gunicorn) inherits the object but not the thread.
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="live-counters", daemon=True)
                self._thread.start()
        self._wake.set()

    def _take(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            pending, self._pending = self._pending, {}
            return pending

    def flush(self) -> None:
        pending = self._take()
        if not pending:
            return
        layer = get_channel_layer()
        for group, payload in pending.items():
            try:
                async_to_sync(layer.group_send)(group, {"type": "store.event", "payload": payload})
            except Exception:
                logger.warning("live counters push failed", exc_info=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        layer = get_channel_layer()
        interval = settings.LIVE_PUBLISH_INTERVAL_SECONDS
        while True:
            self._wake.wait()
            self._wake.clear()
            for group, payload in self._take().items():
                try:
                    loop.run_until_complete(
                        layer.group_send(group, {"type": "store.event", "payload": payload})
                    )
                except Exception:
                    # Counters are already in Redis; the next push carries them.
                    logger.warning("live counters push failed", exc_info=True)
            time.sleep(interval)


_publisher = _CoalescingPublisher()
