"""One version of every schema's beat schedule, kept in the public schema.

django-celery-beat bumps its `PeriodicTasks` row (the "last change" beat polls) in the schema
where a periodic task or schedule changed: a store's nightly training lives in the store's
schema. Mirroring each bump into the public schema's row lets beat check for a change with one
query a tick instead of one per store (apps/tenants/beat.py).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
from django_celery_beat.models import PeriodicTasks
from django_tenants.utils import schema_context


def schedule_version_mirror(sender: type, instance: PeriodicTasks, **kwargs: Any) -> None:
    """post_save of PeriodicTasks: a bump in a store's schema bumps the public row too (as
    the library does, with the time now), in the same transaction as the change itself."""
    if connection.schema_name == settings.PUBLIC_SCHEMA_NAME:
        return
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        PeriodicTasks.update_changed()
