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

Cost at a thousand stores. The library's change check read every store's `PeriodicTasks` row on
each tick (a query per store every 5 s), and the library reloaded every schema's rows every 5
minutes whether or not anything changed. Here a change anywhere bumps the public schema's
`PeriodicTasks` row too (apps/tenants/schedule_version.py), so the check is one query a tick;
every schema is read only when that version moved, or every BEAT_FULL_RELOAD_SECONDS as a
safety net, with one query per schema (crontab rows are not filtered by hour, so nothing
depends on a reload to come into the window).
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from typing import Any

from celery.beat import ScheduleEntry
from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks
from django_celery_beat.schedulers import SCHEDULE_SYNC_MAX_INTERVAL, DatabaseScheduler
from django_tenants.utils import schema_context
from tenant_schemas_celery.db_scheduler import TenantAwareDatabaseScheduler

from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

ALL_STORES_HEADER = "_all_tenants_only"
SCHEMA_HEADER = "_schema_name"
# Names tenant-schemas-celery gives the rows it writes from CELERY_BEAT_SCHEDULE.
CONFIG_ROW_SUFFIXES = ("@public", "@__all_tenants_only__")


class PublicScheduleVersion:
    """`Changes` of the scheduler: the public schema's PeriodicTasks row, which every schema's
    schedule change also bumps. One query, named with its schema so that the connection's
    search path is left as it is (no SET)."""

    @classmethod
    def last_change(cls) -> datetime.datetime | None:
        table = connection.ops.quote_name(PeriodicTasks._meta.db_table)
        schema = connection.ops.quote_name(settings.PUBLIC_SCHEMA_NAME)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT last_update FROM {schema}.{table} WHERE ident = 1")
            row = cursor.fetchone()
        return row[0] if row else None


class StoreAwareDatabaseScheduler(TenantAwareDatabaseScheduler):
    Changes = PublicScheduleVersion
    _reloaded_at = 0.0

    def setup_schedule(self) -> None:
        """Write CELERY_BEAT_SCHEDULE's rows, delete the public rows written from entries no
        longer configured (an entry that moved from all-stores to public must not keep its
        old all-stores row), then read every schema once. The library reads first and writes
        after, which bumps the version and so reads every schema a second time at start."""
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            current = self._tenant_aware_beat_schedule_to_dict(self.app.conf.beat_schedule)
            stale = (
                PeriodicTask.objects.filter(
                    Q(name__endswith=CONFIG_ROW_SUFFIXES[0])
                    | Q(name__endswith=CONFIG_ROW_SUFFIXES[1])
                )
                .exclude(name__in=list(current))
                .values_list("name", flat=True)
            )
            for name in list(stale):
                logger.info("beat: removing the unconfigured entry %s", name)
                PeriodicTask.objects.filter(name=name).delete()
            for name, fields in current.items():
                try:
                    self.Entry.from_entry(name, app=self.app, **fields)
                except Exception:
                    logger.exception("beat: could not write the entry %s", name)
        self.install_default_entries(self.schedule)

    @property
    def schedule(self) -> dict[str, ScheduleEntry]:
        """The library's property, with its forced full reload every 5 minutes postponed to
        BEAT_FULL_RELOAD_SECONDS after the last reload (a change still reloads at once)."""
        since_reload = time.monotonic() - self._reloaded_at
        if self._last_full_sync is not None and since_reload < settings.BEAT_FULL_RELOAD_SECONDS:
            # The library compares it with its own naive now().
            self._last_full_sync = datetime.datetime.now()  # noqa: DTZ005
        return DatabaseScheduler.schedule.fget(self)

    def all_as_schedule(self) -> dict[str, ScheduleEntry]:
        self._reloaded_at = time.monotonic()
        return super().all_as_schedule()

    def enabled_models_qs(self) -> QuerySet[PeriodicTask]:
        """Enabled rows with their schedules joined (one query), clocked ones due before the
        next full reload. Unlike the library, crontab rows are not limited to the hours near
        now: a row must not need a reload to become due."""
        horizon = max(SCHEDULE_SYNC_MAX_INTERVAL, settings.BEAT_FULL_RELOAD_SECONDS)
        soon = timezone.now() + datetime.timedelta(seconds=horizon)
        return (
            PeriodicTask.objects.filter(enabled=True)
            .exclude(clocked__isnull=False, clocked__clocked_time__gt=soon)
            .select_related("interval", "crontab", "solar", "clocked")
        )

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
