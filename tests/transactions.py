"""Writes that must really commit while the test's own connection stays inside its rollback-only
test transaction."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


def committed(fn: Callable[[], T]) -> T:
    """Run `fn` in its own thread and connection, so its writes commit (and their on_commit
    dispatches fire) while the test's own connection stays inside the test transaction."""
    result: dict[str, object] = {}

    def run():
        try:
            result["value"] = fn()
        except BaseException as exc:  # re-raised in the test's thread
            result["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]  # type: ignore[return-value]
