"""The process's one background flusher: a daemon thread that runs every registered flush
function every few seconds (and at exit).

For counters, logs and live pushes that the request path buffers in memory so it does no I/O:
each buffer registers a `PeriodicFlusher` (at import), which runs on the one shared thread. The
thread is started lazily by the first buffered write of each process (after a fork, the child
starts its own), and a failing flush is logged, never fatal to the thread or to the other
flushers.

A flusher runs every `interval_seconds`; `wake()` asks for a run sooner, but never sooner than
`min_gap_seconds` after its previous run (0: at once). A positive gap coalesces: whatever was
buffered meanwhile goes in the next run (the live dashboard pushes use it).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class PeriodicFlusher:
    def __init__(
        self,
        name: str,
        flush: Callable[[], object],
        interval_seconds: float,
        *,
        min_gap_seconds: float = 0.0,
    ) -> None:
        self.name = name
        self.flush = flush
        self.interval_seconds = interval_seconds
        self.min_gap_seconds = min_gap_seconds
        self._woken = False
        self._last_run = 0.0
        _thread.add(self)
        atexit.register(self._flush_quietly)

    def ensure_started(self) -> None:
        """Start the shared thread in this process if it is not running (cheap when it is)."""
        _thread.ensure_started()

    def wake(self) -> None:
        """Flush soon (after `min_gap_seconds` since the last run), without waiting for the
        interval."""
        self._woken = True
        _thread.ensure_started()
        _thread.wake.set()

    def _due_at(self) -> float:
        gap = self.min_gap_seconds if self._woken else self.interval_seconds
        return self._last_run + gap

    def _run_now(self, now: float) -> None:
        self._woken = False
        self._last_run = now
        self._flush_quietly()

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception:  # the flushing thread must survive anything
            logger.exception("%s: flush failed", self.name)


class _FlushThread:
    """The one thread that runs every flusher of the process when it is due."""

    def __init__(self) -> None:
        self.flushers: list[PeriodicFlusher] = []
        self.wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def add(self, flusher: PeriodicFlusher) -> None:
        with self._lock:
            self.flushers.append(flusher)

    def ensure_started(self) -> None:
        thread = self._thread
        if thread is not None and self._pid == os.getpid() and thread.is_alive():
            return
        with self._lock:
            thread = self._thread
            if thread is not None and self._pid == os.getpid() and thread.is_alive():
                return
            self.wake = threading.Event()
            self._thread = threading.Thread(target=self._run, name="flusher", daemon=True)
            self._pid = os.getpid()
            self._thread.start()

    def _run(self) -> None:
        wake = self.wake
        while True:
            wake.clear()
            now = time.monotonic()
            for flusher in list(self.flushers):
                if flusher._due_at() <= now:
                    flusher._run_now(now)
            now = time.monotonic()
            next_due = min((f._due_at() for f in self.flushers), default=now + 1.0)
            if next_due > now:
                wake.wait(next_due - now)


_thread = _FlushThread()
