"""Celery tasks of the recommendations app. Thin: they run in the schema of the store that
sent them (tenant-schemas-celery) and call one service.

Names are explicit and fixed (queued messages and stored beat rows refer to them), and
CELERY_TASK_ROUTES routes each by exact name: training and precompute on the `training` queue,
the impression copy on `default`, so it never waits behind a training. The impression copy is
sent only to stores that logged impressions (apps.core.activity), by one public-schema task."""

from __future__ import annotations

import contextlib
import logging

import redis
from celery import shared_task
from django.db import connection

from apps.core.activity import Activity, stores_dispatch, stores_pending_mark, stores_pending_take
from apps.core.errors import ApplicationError
from apps.recommendations import services
from apps.recommendations.impressions import impressions_stranded

logger = logging.getLogger(__name__)


@shared_task(name="apps.recommendations.tasks.train_model_version")
def train_model_version(version_id: int) -> dict:
    """Train a version created by `model_version_start`. Acked late and requeued if the worker
    process dies mid-training (SIGKILL, out of memory): the version is still `training`, so the
    redelivered task trains it again (a bounded number of times, see the service); a version
    already finished is returned as is."""
    version = services.model_version_train_task_run(version_id=version_id)
    return {"number": version.number, "status": version.status}


@shared_task(name="apps.recommendations.tasks.train_nightly", acks_late=False)
def train_nightly() -> dict:
    """The store's scheduled training (beat entry created by `training_schedule_ensure`)."""
    try:
        version = services.model_version_start(
            actor_label="schedule", dispatch=False, plan_limited=False
        )
    except ApplicationError as exc:
        logger.info("nightly training skipped: %s", exc.message)
        return {"skipped": exc.code}
    version = services.model_version_train(version_id=version.pk)
    return {"number": version.number, "status": version.status}


@shared_task(name="apps.recommendations.tasks.precompute_recommendations")
def precompute_recommendations(version_id: int) -> dict:
    report = services.recommendations_precompute(version_id=version_id)
    return {"shoppers": report.shoppers, "seconds": round(report.seconds, 3)}


@shared_task(name="recommendations.impressions_persist")
def impressions_persist() -> int:
    """Sent into a store's schema by `impressions_persist_dispatch`. When it fails the store is
    marked again, so the next dispatch retries it (and the hourly sweep, if Redis was down)."""
    try:
        return services.impressions_persist_and_meter()
    except Exception:
        with contextlib.suppress(redis.RedisError):
            stores_pending_mark(Activity.IMPRESSIONS, [connection.schema_name])
        raise


@shared_task(name="recommendations.impressions_persist_dispatch")
def impressions_persist_dispatch() -> int:
    """Beat, in the public schema, every RECS_IMPRESSIONS_PERSIST_SECONDS: `impressions_persist`
    for each store that pushed impressions since (plus, once an hour, any store whose list is
    not empty). Returns the number of stores sent."""
    schemas = set(stores_pending_take(Activity.IMPRESSIONS))
    schemas |= set(impressions_stranded())
    return stores_dispatch(impressions_persist, sorted(schemas), remark=Activity.IMPRESSIONS)
