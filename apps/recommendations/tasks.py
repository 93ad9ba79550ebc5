"""Celery tasks of the recommendations app. Thin: they run in the schema of the store that
sent them (tenant-schemas-celery) and call one service.

Names are explicit and fixed (queued messages and stored beat rows refer to them), and
CELERY_TASK_ROUTES routes each by exact name: training and precompute on the `training` queue,
the impression copy on `default`, so it never waits behind a training."""

from __future__ import annotations

import logging

import redis
from celery import shared_task

from apps.core.errors import ApplicationError
from apps.recommendations import services

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


@shared_task(
    name="recommendations.impressions_persist",
    autoretry_for=(redis.RedisError,),
    retry_backoff=True,
    max_retries=3,
)
def impressions_persist() -> int:
    return services.impressions_persist_and_meter()
