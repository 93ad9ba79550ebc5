"""Celery beat's scheduler: django-celery-beat rows in every schema, each task sent with the
schema it must run in (settings.CELERY_BEAT_SCHEDULER points here).

tenant-schemas-celery's TenantAwareDatabaseScheduler (5.0.0) reads the public schema's rows and
every store's, stamping each with `_schema_name` = the schema it was read from. For an entry of
CELERY_BEAT_SCHEDULE without `tenant_schemas` (stored once, in public, with the header
`_all_tenants_only`) that stamp then survives into every store's copy when it is sent: once
beat has reloaded its schedule from the database (a store created, any schedule change, or the
forced sync every 5 minutes) every "all stores" task ran in the public schema instead. Here
each copy is sent with its target store's schema, and a row read from a store's schema always
carries that schema.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from celery.beat import ScheduleEntry
from django.conf import settings
from django_celery_beat.models import PeriodicTask
from django_tenants.utils import schema_context
from tenant_schemas_celery.db_scheduler import TenantAwareDatabaseScheduler

from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

ALL_STORES_HEADER = "_all_tenants_only"
SCHEMA_HEADER = "_schema_name"


class StoreAwareDatabaseScheduler(TenantAwareDatabaseScheduler):
    def enabled_models(self) -> list[PeriodicTask]:
        """Enabled rows of every schema; `_schema_name` is the schema each row lives in (beat
        reads and saves its run times there). A name used in two schemas is refused, as
        tenant-schemas-celery does: entries are keyed by name."""
        models: list[PeriodicTask] = []
        seen: dict[str, str] = {}
        for schema_name in self.get_schema_names():
            with schema_context(schema_name):
                for task in self.enabled_models_qs():
                    if task.name in seen:
                        raise ValueError(
                            f"duplicate periodic task name: {task.name!r} in schemas "
                            f"{seen[task.name]!r} and {schema_name!r}"
                        )
                    headers = json.loads(task.headers or "{}")
                    headers[SCHEMA_HEADER] = schema_name
                    task.headers = json.dumps(headers)
                    models.append(task)
                    seen[task.name] = schema_name
        return models

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        """Send `entry` once per target schema (every store for an all-stores entry, else the
        schema it names), each copy stamped with its target's schema. A failed send is logged
        and does not stop the other copies."""
        headers = entry.options.setdefault("headers", {})
        stores = Tenant.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
        if headers.get(ALL_STORES_HEADER):
            targets = list(stores.order_by("pk").values_list("schema_name", flat=True))
        else:
            target = headers.get(SCHEMA_HEADER, settings.PUBLIC_SCHEMA_NAME)
            exists = (
                target == settings.PUBLIC_SCHEMA_NAME or stores.filter(schema_name=target).exists()
            )
            targets = [target] if exists else []
        logger.info("beat: sending %s (%s) to %d schema(s)", entry.name, entry.task, len(targets))
        for schema_name in targets:
            stamped = ScheduleEntry(
                name=entry.name,
                task=entry.task,
                last_run_at=entry.last_run_at,
                total_run_count=entry.total_run_count,
                schedule=entry.schedule,
                args=entry.args,
                kwargs=entry.kwargs,
                options={**entry.options, "headers": {**headers, SCHEMA_HEADER: schema_name}},
                app=self.app,
            )
            with schema_context(schema_name):
                try:
                    self.apply_async(stamped, producer=producer, advance=False)
                except Exception:
                    logger.exception("beat: could not send %s to %s", entry.name, schema_name)
