"""The one way tests start a real Celery worker: in a thread, consuming exactly the test run's
queues (config/settings/test.py: test-default, test-training), never a developer's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery.contrib.testing.worker import start_worker
from celery.worker import WorkController

from config.celery import app


def queue_names() -> list[str]:
    return [queue.name for queue in app.conf.task_queues]


@contextmanager
def running_worker(**options: Any) -> Iterator[WorkController]:
    """A solo-pool worker of config.celery's app on the test queues, for a `with` block
    (`options` go to celery's start_worker, e.g. shutdown_timeout=60). Messages left on those
    queues by an interrupted earlier run are dropped first: they name rows of another test
    database."""
    with app.connection_for_write() as conn:
        for name in queue_names():
            app.amqp.queues[name].bind(conn.default_channel).purge()
    with start_worker(
        app,
        pool="solo",
        perform_ping_check=False,
        loglevel="WARNING",
        queues=queue_names(),
        **options,
    ) as worker:
        yield worker
