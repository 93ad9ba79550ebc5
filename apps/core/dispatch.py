"""The one way to send a store's Celery task from a service: `dispatch_on_commit`."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django_tenants.utils import schema_context


def dispatch_on_commit(task, *args: Any, **kwargs: Any) -> None:
    """Send `task(*args, **kwargs)` once the current transaction commits (at once outside
    one), to run in the schema of the store this was called in.

    tenant-schemas-celery stamps the connection's schema when a task is sent; an on-commit
    callback may run after the caller left that schema (a public-schema service that worked
    inside `tenant_context`, an outer transaction committing elsewhere), so the schema is
    captured now and the task sent inside it."""
    schema_name = connection.schema_name

    def send() -> None:
        with schema_context(schema_name):
            task.apply_async(args=args, kwargs=kwargs)

    transaction.on_commit(send)
