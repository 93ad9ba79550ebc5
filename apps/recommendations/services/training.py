"""Training runs of a store: starting a version (plan limits, one training at a time), running
it under the store's advisory lock, the restart cap of the training task, and recording the
outcome (ready and maybe activated, or failed) with the members notified.

Every function works on the current connection schema (the store's)."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import orjson
import redis
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.billing.entitlements import plan_limit_check
from apps.core.cache import redis_client, tenant_key
from apps.core.dispatch import dispatch_on_commit
from apps.core.errors import ApplicationError
from apps.core.live import store_push_on_commit
from apps.core.platform_metrics import platform_event_count
from apps.notifications.services import notification_send
from apps.recommendations.model_store import artifact_delete, artifact_save
from apps.recommendations.models import ModelVersion
from apps.recommendations.selectors import trainings_started_today_count
from apps.recommendations.services.activation import active_version_swap
from apps.recommendations.services.common import MODELS_LINK, store_schema
from apps.recommendations.services.precompute import Precompute
from apps.recommendations.training import (
    ProgressPublisher,
    activation_decision,
    catalog_read,
    interactions_read,
    recent_window_compare,
    training_window,
)
from apps.users.models import User
from ml.data import Interactions
from ml.pipeline import TrainingConfig, train

logger = logging.getLogger(__name__)


_TRAINING_LOCK_CLASS = 7_301  # pg advisory lock class of "one training per store"


def default_training_config() -> dict[str, Any]:
    return TrainingConfig(search_trials=settings.RECS_TRAINING_SEARCH_TRIALS).to_dict()


def _fail_abandoned_trainings() -> None:
    """A worker killed mid-training leaves its version `training` forever; after the task time
    limit it is marked failed so the store can train again."""
    limit = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 300)
    ModelVersion.objects.filter(status=ModelVersion.Status.TRAINING, created_at__lt=limit).update(
        status=ModelVersion.Status.FAILED,
        error="Abandoned: the training did not finish within the task time limit.",
        finished_at=timezone.now(),
    )


@transaction.atomic
def model_version_start(
    *,
    acting_user: User | None = None,
    actor_label: str = "",
    config: dict[str, Any] | None = None,
    dispatch: bool = True,
    plan_limited: bool = True,
    request: HttpRequest | None = None,
) -> ModelVersion:
    """Create the next version in status `training` and (with `dispatch`) send the training
    task to the `training` queue after commit. Audited as `model.training_started`.
    `plan_limited`: count against the plan's trainings a day (members and API keys; staff
    commands and the nightly schedule pass False).

    Raises ApplicationError 409 `training_in_progress` while another training of the store
    runs, 400 naming `config` for a configuration the engine rejects, 403
    `plan_upgrade_required` when today's trainings (UTC) already reach the plan's limit."""
    schema = store_schema()
    if plan_limited:
        plan_limit_check(
            tenant=connection.tenant,
            limit="trainings_per_day",
            in_use=trainings_started_today_count(),
        )
    try:
        clean = TrainingConfig.from_dict({**default_training_config(), **(config or {})}).to_dict()
    except (TypeError, ValueError) as exc:
        raise ApplicationError(
            f"Invalid training configuration: {exc}", fields={"config": [str(exc)]}
        ) from exc
    _fail_abandoned_trainings()
    number = (ModelVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
    label = actor_label or (getattr(acting_user, "email", "") if acting_user else "") or "system"
    try:
        with transaction.atomic():
            version = ModelVersion.objects.create(
                number=number,
                status=ModelVersion.Status.TRAINING,
                config=clean,
                started_by_id=acting_user.pk if acting_user is not None else None,
                started_by_label=label[:255],
            )
    except IntegrityError as exc:
        raise ApplicationError(
            "A training of this store is already running.",
            code="training_in_progress",
            status_code=409,
        ) from exc
    audit_record(
        action=AuditAction.MODEL_TRAINING_STARTED,
        acting_user=acting_user,
        actor_label=actor_label,
        target_type="model_version",
        target_id=str(version.number),
        details={"number": version.number},
        request=request,
    )
    if dispatch:
        from apps.recommendations.tasks import train_model_version

        dispatch_on_commit(train_model_version, version.pk)
    store_push_on_commit(
        {"type": "training.started", "model_version": version.pk, "number": version.number},
        schema_name=schema,
    )
    return version


@contextmanager
def _training_lock(schema_name: str) -> Iterator[bool]:
    """Session-level PostgreSQL advisory lock: one training per store across all workers."""
    key = zlib.crc32(schema_name.encode()) & 0x7FFFFFFF
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_TRAINING_LOCK_CLASS, key])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_TRAINING_LOCK_CLASS, key])


def training_running() -> bool:
    """True while some process (a worker, a command) holds this store's training lock."""
    with _training_lock(store_schema()) as acquired:
        return not acquired


def model_version_train(*, version_id: int, precompute: Precompute = "async") -> ModelVersion:
    """Run the training of a `training` version: read the store's events and items, train,
    evaluate, save the artifact under models/<schema>/<number>/, score it and the active model
    on the same recent window (`metrics["recent_window"]`), then mark it `ready` and activate it
    when it beats popularity and is not worse than the active model on that window beyond the
    tolerance (`activation_decision`).

    Progress goes to the store's dashboard group. Any failure marks the version `failed`
    with the error and leaves the active model untouched. The members are notified
    (`training.finished` / `training.failed`, and `model.activated` when it activates) in the
    transaction of that state change; deliveries leave on commit. Idempotent: a version that
    is no longer `training` is returned as is. Not atomic as a whole (it runs for minutes); each
    state change is."""
    schema = store_schema()
    with _training_lock(schema) as acquired:
        version = ModelVersion.objects.get(pk=version_id)
        if not acquired or version.status != ModelVersion.Status.TRAINING:
            logger.info("training of v%s skipped (status %s)", version.number, version.status)
            return version
        publish = ProgressPublisher(schema, version.pk, version.number)
        artifact = ""
        try:
            publish("reading", 0)
            since, until = training_window()
            interactions = (
                interactions_read(since=since, until=until) if since else Interactions.empty()
            )
            catalog = catalog_read()
            config = TrainingConfig.from_dict(version.config)
            result = train(
                interactions,
                catalog,
                config,
                progress=lambda stage, pct: publish(stage, 5 + int(pct * 0.85)),
            )
            publish("saving", 92)
            artifact = artifact_save(result.model, schema_name=schema, number=version.number)
            publish("comparing", 94)
            window, skipped = recent_window_compare(
                candidate=result.model,
                interactions=interactions,
                catalog=catalog,
                config=config,
                active=ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first(),
            )
            if window is not None:
                result.metrics["recent_window"] = window
            elif skipped:
                result.metrics["recent_window_skipped"] = skipped
            counts = {
                "events": len(interactions),
                "shoppers": int(result.metrics.get("users", 0)),
                "items": int(result.metrics.get("items", 0)),
            }
            return _training_finish(
                version_id=version.pk,
                metrics=result.metrics,
                strategy=str(result.model.strategy),
                artifact=artifact,
                counts=counts,
                window=(since, until),
                precompute=precompute,
            )
        except Exception as exc:
            logger.exception("training of v%s failed", version.number)
            artifact_delete(artifact)
            return _training_fail(version_id=version.pk, error=f"{type(exc).__name__}: {exc}")


# The training task is acked late and requeued when its worker process dies (tasks.py); after
# this many starts of one version it is marked failed instead, so a training that kills its
# worker (out of memory, say) cannot loop forever.
TRAINING_MAX_STARTS = 3
_TRAINING_STARTS_TTL_SECONDS = 24 * 3600


def model_version_train_task_run(*, version_id: int) -> ModelVersion:
    """What the training task runs: `model_version_train`, unless the task of this version has
    already started TRAINING_MAX_STARTS times (its worker died each time; counted in Redis for
    a day, not counted while Redis is down): then the version is marked failed, with the
    members notified as for any failed training."""
    starts = 1
    try:
        pipe = redis_client().pipeline(transaction=False)
        key = tenant_key("recs", "training-starts", version_id)
        pipe.incr(key)
        pipe.expire(key, _TRAINING_STARTS_TTL_SECONDS)
        starts = int(pipe.execute()[0])
    except redis.RedisError:
        logger.warning("training starts of version %s not counted: Redis unavailable", version_id)
    if starts > TRAINING_MAX_STARTS:
        version = ModelVersion.objects.get(pk=version_id)
        if version.status != ModelVersion.Status.TRAINING:
            return version
        return _training_fail(
            version_id=version_id,
            error=f"The worker running this training died {starts - 1} times; not retried.",
        )
    return model_version_train(version_id=version_id)


def _metrics_json(metrics: dict[str, Any]) -> dict[str, Any]:
    """numpy scalars and NaN out: what JSONField stores must be plain JSON."""
    return orjson.loads(orjson.dumps(metrics, option=orjson.OPT_SERIALIZE_NUMPY))


@transaction.atomic
def _training_finish(
    *,
    version_id: int,
    metrics: dict[str, Any],
    strategy: str,
    artifact: str,
    counts: dict[str, int],
    window: tuple,
    precompute: Precompute,
) -> ModelVersion:
    version = ModelVersion.objects.select_for_update().get(pk=version_id)
    active = (
        ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE).first()
    )
    version.status = ModelVersion.Status.READY
    version.metrics = _metrics_json(metrics)
    version.strategy = strategy
    version.artifact_path = artifact
    version.counts = counts
    version.window_start, version.window_end = window
    version.finished_at = timezone.now()
    activate, note = activation_decision(
        version.metrics,
        active_ndcg=active.ndcg if active is not None else None,
        tolerance=settings.RECS_ACTIVATION_TOLERANCE,
        active_number=active.number if active is not None else None,
    )
    version.activation_note = note
    version.save()
    audit_record(
        action=AuditAction.MODEL_TRAINED,
        actor_label=version.started_by_label,
        target_type="model_version",
        target_id=str(version.number),
        details={
            "number": version.number,
            "ndcg@10": version.ndcg,
            "strategy": strategy,
            "activated": activate,
            "note": note,
        },
    )
    schema = connection.schema_name
    payload = {
        "type": "training.finished",
        "model_version": version.pk,
        "number": version.number,
        "status": "active" if activate else "ready",
        "note": note,
    }
    notification_send(
        kind="training.finished",
        title=f"Model v{version.number} trained",
        body=f"{note} Strategy: {strategy}.",
        link=MODELS_LINK,
        data={"number": version.number, "ndcg@10": version.ndcg, "activated": activate},
    )
    if activate:
        version = active_version_swap(
            version=version,
            previous=active,
            action=AuditAction.MODEL_ACTIVATED,
            actor_label="training",
            reason=note,
            precompute=precompute,
        )
    store_push_on_commit(payload, schema_name=schema)
    return version


@transaction.atomic
def _training_fail(*, version_id: int, error: str) -> ModelVersion:
    version = ModelVersion.objects.select_for_update().get(pk=version_id)
    version.status = ModelVersion.Status.FAILED
    version.error = error[:5000]
    version.finished_at = timezone.now()
    version.save(update_fields=["status", "error", "finished_at"])
    platform_event_count("training_failed")
    audit_record(
        action=AuditAction.MODEL_TRAINING_FAILED,
        actor_label=version.started_by_label,
        target_type="model_version",
        target_id=str(version.number),
        details={"number": version.number, "error": error[:500]},
    )
    notification_send(
        kind="training.failed",
        title=f"Training of v{version.number} failed",
        body=f"The active model keeps serving. Error: {error[:500]}",
        link=MODELS_LINK,
        data={"number": version.number},
    )
    schema = connection.schema_name
    store_push_on_commit(
        {
            "type": "training.finished",
            "model_version": version.pk,
            "number": version.number,
            "status": "failed",
            "note": error[:500],
        },
        schema_name=schema,
    )
    return version
