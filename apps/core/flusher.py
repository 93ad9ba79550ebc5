"""A per-process daemon thread that calls a flush function every few seconds (and at exit).

For counters and logs that the request path buffers in memory so it does no I/O: the thread
is started lazily by the first request of each process (after a fork, the child starts its
own), and a failing flush is logged, never fatal to the thread.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class PeriodicFlusher:
    def __init__(self, name: str, flush: Callable[[], object], interval_seconds: float) -> None:
        self.name = name
        self.flush = flush
        self.interval_seconds = interval_seconds
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        atexit.register(self._flush_quietly)

    def ensure_started(self) -> None:
        """Start the thread in this process if it is not running (cheap when it is)."""
        thread = self._thread
        if thread is not None and self._pid == os.getpid() and thread.is_alive():
            return
        with self._lock:
            thread = self._thread
            if thread is not None and self._pid == os.getpid() and thread.is_alive():
                return
            self._wake = threading.Event()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._pid = os.getpid()
            self._thread.start()

    def wake(self) -> None:
        """Flush soon, without waiting for the interval."""
        self._wake.set()

    def _run(self) -> None:
        wake = self._wake
        while True:
            wake.wait(self.interval_seconds)
            wake.clear()
            self._flush_quietly()

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception:  # the flushing thread must survive anything
            logger.exception("%s: flush failed", self.name)
