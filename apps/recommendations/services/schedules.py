"""The store's nightly training as a django-celery-beat entry in the store's schema."""

from __future__ import annotations

import zlib

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from apps.recommendations.services.common import store_schema

NIGHTLY_TASK = "apps.recommendations.tasks.train_nightly"


@transaction.atomic
def training_schedule_ensure(*, hour: int | None = None, minute: int | None = None) -> PeriodicTask:
    """The store's nightly training as a django-celery-beat PeriodicTask in the store's schema
    (the tenant-aware beat scheduler sends it with the store's schema). Stores are spread
    between 01:00 and 04:59 UTC by a hash of the schema unless `hour`/`minute` are given. An
    existing entry keeps its enabled flag; its time is only changed when asked."""
    schema = store_schema()
    spread = zlib.crc32(schema.encode())
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=str(spread % 60 if minute is None else minute),
        hour=str(1 + (spread // 60) % 4 if hour is None else hour),
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="UTC",
    )
    # The schema in the name: beat keys entries by name across every schema. No queue on the
    # row: CELERY_TASK_ROUTES sends the task to the training queue of this deployment (a test
    # run's queues are prefixed), and a queue stored here would override it.
    name = f"recommendations-nightly-training@{schema}"
    task, created = PeriodicTask.objects.get_or_create(
        name=name, defaults={"task": NIGHTLY_TASK, "crontab": crontab}
    )
    changed = []
    if not created and (hour is not None or minute is not None) and task.crontab_id != crontab.pk:
        task.crontab = crontab
        changed.append("crontab")
    if task.queue is not None:  # rows made before routing decided the queue
        task.queue = None
        changed.append("queue")
    if changed:
        task.save(update_fields=changed)
    return task
