"""Writes of the recommendations app: training runs, activation and rollback, precomputed
lists, experiments, the nightly schedule, and a shopper's cached lists (GDPR erasure).

Every function works on the current connection schema (the store's)."""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import orjson
import redis
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Q
from django.http import HttpRequest
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from apps.audit.services import audit_record
from apps.billing.entitlements import plan_feature_require, plan_limit_check
from apps.catalog.models import Shopper
from apps.core.cache import redis_client, tenant_key
from apps.core.errors import ApplicationError
from apps.dashboard.consumers import store_group
from apps.notifications.kinds import Severity
from apps.notifications.services import notification_send
from apps.recommendations import cache as rcache
from apps.recommendations.model_store import artifact_delete, artifact_save, models
from apps.recommendations.models import Experiment, ExperimentArm, ModelVersion
from apps.recommendations.training import (
    ProgressPublisher,
    activation_decision,
    catalog_read,
    interactions_read,
    store_event_send,
    training_window,
)
from ml.data import Interactions
from ml.pipeline import TrainingConfig, train

logger = logging.getLogger(__name__)

# `started_by_label` of versions an API key started: "api_key:<prefix>".
API_KEY_LABEL_PREFIX = "api_key:"

Precompute = Literal["async", "sync", "none"]
_TRAINING_LOCK_CLASS = 7_301  # pg advisory lock class of "one training per store"
PRECOMPUTE_BATCH = 1_000
NIGHTLY_TASK = "apps.recommendations.tasks.train_nightly"
# Where a store's notifications about training and activation point (the dashboard's models page).
MODELS_LINK = "/models/"


def _schema() -> str:
    schema = connection.schema_name
    if schema == settings.PUBLIC_SCHEMA_NAME:
        raise ApplicationError("Recommendations belong to a store, not the public schema.")
    return schema


def _push(schema_name: str, payload: dict[str, Any]) -> None:
    store_event_send(store_group(schema_name), payload)


def default_training_config() -> dict[str, Any]:
    return TrainingConfig(time_budget_seconds=settings.RECS_TRAINING_TIME_BUDGET_SECONDS).to_dict()


# --- training ----------------------------------------------------------------------------------
def _ndcg_text(ndcg: float | None) -> str:
    return "n/a" if ndcg is None else f"{ndcg:.4f}"


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
    started_by=None,
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
    schema = _schema()
    if plan_limited:
        midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        # Only what members and API keys started counts: the demo seed, staff commands and
        # the nightly schedule do not use up a store's trainings.
        started_today = ModelVersion.objects.filter(created_at__gte=midnight).filter(
            Q(started_by_id__isnull=False) | Q(started_by_label__startswith=API_KEY_LABEL_PREFIX)
        )
        plan_limit_check(
            tenant=connection.tenant, limit="trainings_per_day", in_use=started_today.count()
        )
    try:
        clean = TrainingConfig.from_dict({**default_training_config(), **(config or {})}).to_dict()
    except (TypeError, ValueError) as exc:
        raise ApplicationError(
            f"Invalid training configuration: {exc}", fields={"config": [str(exc)]}
        ) from exc
    _fail_abandoned_trainings()
    number = (ModelVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
    label = actor_label or (getattr(started_by, "email", "") if started_by else "") or "system"
    try:
        with transaction.atomic():
            version = ModelVersion.objects.create(
                number=number,
                status=ModelVersion.Status.TRAINING,
                config=clean,
                started_by_id=started_by.pk if started_by is not None else None,
                started_by_label=label[:255],
            )
    except IntegrityError as exc:
        raise ApplicationError(
            "A training of this store is already running.",
            code="training_in_progress",
            status_code=409,
        ) from exc
    audit_record(
        action="model.training_started",
        actor_user=started_by,
        actor_label=actor_label,
        target_type="model_version",
        target_id=str(version.number),
        details={"number": version.number},
        request=request,
    )
    if dispatch:
        from apps.recommendations.tasks import train_model_version

        transaction.on_commit(lambda: train_model_version.delay(version.pk))
    transaction.on_commit(
        lambda: _push(
            schema,
            {"type": "training.started", "model_version": version.pk, "number": version.number},
        )
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
    with _training_lock(_schema()) as acquired:
        return not acquired


def model_version_train(*, version_id: int, precompute: Precompute = "async") -> ModelVersion:
    """Run the training of a `training` version: read the store's events and items, train,
    evaluate, save the artifact under models/<schema>/<number>/, then mark it `ready` and
    activate it when it beats popularity (and the active model within the tolerance).

    Progress goes to the store's dashboard group. Any failure marks the version `failed`
    with the error and leaves the active model untouched. The members are notified
    (`training.finished` / `training.failed`, and `model.activated` when it activates) in the
    transaction of that state change; deliveries leave on commit. Idempotent: a version that
    is no longer `training` is returned as is. Not atomic as a whole (it runs for minutes); each
    state change is."""
    schema = _schema()
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
    )
    version.activation_note = note
    version.save()
    audit_record(
        action="model.trained",
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
        version = _activate(
            version=version,
            previous=active,
            action="model.activated",
            actor_label="training",
            reason=note,
            precompute=precompute,
        )
    transaction.on_commit(lambda: _push(schema, payload))
    return version


@transaction.atomic
def _training_fail(*, version_id: int, error: str) -> ModelVersion:
    version = ModelVersion.objects.select_for_update().get(pk=version_id)
    version.status = ModelVersion.Status.FAILED
    version.error = error[:5000]
    version.finished_at = timezone.now()
    version.save(update_fields=["status", "error", "finished_at"])
    audit_record(
        action="model.training_failed",
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
    transaction.on_commit(
        lambda: _push(
            schema,
            {
                "type": "training.finished",
                "model_version": version.pk,
                "number": version.number,
                "status": "failed",
                "note": error[:500],
            },
        )
    )
    return version


# --- activation --------------------------------------------------------------------------------
def _activation_text(*, version: ModelVersion, previous: ModelVersion | None, reason: str) -> str:
    replaced = f" It replaces v{previous.number}." if previous is not None else ""
    because = f" Reason: {reason.rstrip('.')}." if reason else ""
    return f"NDCG@10 {_ndcg_text(version.ndcg)}.{replaced}{because}"


def _activate(
    *,
    version: ModelVersion,
    previous: ModelVersion | None,
    action: str,
    reason: str = "",
    actor_user=None,
    actor_api_key=None,
    actor_label: str = "",
    request: HttpRequest | None = None,
    precompute: Precompute = "async",
) -> ModelVersion:
    """Swap the active version inside the caller's transaction (previous → retired first: the
    one-active constraint is checked per statement), audit it, notify the members
    (`model.activated`; a rollback as a warning), and after commit announce the new state to
    every serving process and precompute the lists."""
    now = timezone.now()
    if previous is not None and previous.pk != version.pk:
        previous.status = ModelVersion.Status.RETIRED
        previous.save(update_fields=["status"])
    version.status = ModelVersion.Status.ACTIVE
    version.activated_at = now
    version.save(update_fields=["status", "activated_at"])
    audit_record(
        action=action,
        actor_user=actor_user,
        actor_api_key=actor_api_key,
        actor_label=actor_label,
        target_type="model_version",
        target_id=str(version.number),
        details={
            "number": version.number,
            "previous": previous.number if previous is not None else None,
            "ndcg@10": version.ndcg,
            "reason": reason,
        },
        request=request,
    )
    rollback = action == "model.rolled_back"
    notification_send(
        kind="model.activated",
        title=f"Rolled back to model v{version.number}"
        if rollback
        else f"Model v{version.number} is now active",
        body=_activation_text(version=version, previous=previous, reason=reason),
        link=MODELS_LINK,
        severity=Severity.WARNING if rollback else None,
        data={
            "number": version.number,
            "previous": previous.number if previous is not None else None,
            "rollback": rollback,
        },
    )
    schema = connection.schema_name
    transaction.on_commit(lambda: rcache.state_changed(schema))
    transaction.on_commit(
        lambda: _push(
            schema,
            {"type": "model.activated", "model_version": version.pk, "number": version.number},
        )
    )
    if precompute == "async":
        from apps.recommendations.tasks import precompute_recommendations

        transaction.on_commit(lambda: precompute_recommendations.delay(version.pk))
    elif precompute == "sync":
        transaction.on_commit(lambda: recommendations_precompute(version_id=version.pk))
    return version


@transaction.atomic
def model_version_activate(
    *,
    version: ModelVersion,
    actor_user=None,
    actor_api_key=None,
    actor_label: str = "",
    reason: str = "",
    request: HttpRequest | None = None,
    precompute: Precompute = "async",
) -> ModelVersion:
    """Make a trained version the one serving the store (manual activation; training
    activates by itself when the version qualifies). Audited as `model.activated`.

    Raises ApplicationError 409 `not_activatable` for a version that is training, failed or
    already active."""
    _schema()
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if version.status not in (ModelVersion.Status.READY, ModelVersion.Status.RETIRED):
        raise ApplicationError(
            f"Version v{version.number} is {version.status} and cannot be activated.",
            code="not_activatable",
            status_code=409,
        )
    previous = (
        ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE).first()
    )
    return _activate(
        version=version,
        previous=previous,
        action="model.activated",
        reason=reason or "manual",
        actor_user=actor_user,
        actor_api_key=actor_api_key,
        actor_label=actor_label,
        request=request,
        precompute=precompute,
    )


@transaction.atomic
def model_version_rollback(
    *,
    actor_user=None,
    actor_api_key=None,
    actor_label: str = "",
    request: HttpRequest | None = None,
    precompute: Precompute = "async",
) -> ModelVersion:
    """Re-activate the version that was active before the current one; the current one is
    retired. Audited as `model.rolled_back`. Raises ApplicationError 409 `no_previous_version`
    when there is nothing to roll back to."""
    _schema()
    current = (
        ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE).first()
    )
    candidates = ModelVersion.objects.select_for_update().filter(
        status=ModelVersion.Status.RETIRED, activated_at__isnull=False
    )
    if current is not None:
        candidates = candidates.exclude(pk=current.pk)
    previous = candidates.order_by("-activated_at", "-number").first()
    if previous is None:
        raise ApplicationError(
            "There is no previously active version to roll back to.",
            code="no_previous_version",
            status_code=409,
        )
    return _activate(
        version=previous,
        previous=current,
        action="model.rolled_back",
        reason=f"rollback from v{current.number}" if current else "rollback",
        actor_user=actor_user,
        actor_api_key=actor_api_key,
        actor_label=actor_label,
        request=request,
        precompute=precompute,
    )


# --- precomputed lists -------------------------------------------------------------------------
@dataclass
class PrecomputeReport:
    shoppers: int = 0
    seconds: float = 0.0
    complete: bool = True

    @property
    def per_second(self) -> float:
        return self.shoppers / self.seconds if self.seconds else 0.0


def recommendations_precompute(
    *, version_id: int, active_days: int | None = None, max_shoppers: int | None = None
) -> PrecomputeReport:
    """Write the top-100 of recently active shoppers (last `active_days`, default
    RECS_PRECOMPUTE_ACTIVE_DAYS, before the newest activity; None in settings = everyone)
    into Redis, in batches, for a version that is still active. Stops early (complete=False)
    when Redis fails: the request path fills the rest on demand."""
    schema = _schema()
    report = PrecomputeReport()
    version = ModelVersion.objects.filter(pk=version_id, status=ModelVersion.Status.ACTIVE).first()
    if version is None:
        return report
    started = time.perf_counter()
    model = models.get(schema, version.pk, version.artifact_path).model
    days = settings.RECS_PRECOMPUTE_ACTIVE_DAYS if active_days is None else active_days
    limit = settings.RECS_PRECOMPUTE_MAX_SHOPPERS if max_shoppers is None else max_shoppers
    shoppers = Shopper.objects.exclude(last_seen_at=None)
    newest = shoppers.aggregate(newest=Max("last_seen_at"))["newest"]
    if newest is None:
        return report
    if days:
        shoppers = shoppers.filter(last_seen_at__gte=newest - timedelta(days=days))
    user_ids = list(shoppers.order_by("-last_seen_at").values_list("user_id", flat=True)[:limit])
    known = model.user_index.lookup(user_ids) >= 0
    user_ids = [user for user, ok in zip(user_ids, known.tolist(), strict=True) if ok]
    strategy = model.strategy
    ttl = settings.RECS_CACHE_TTL_SECONDS
    variants = [True, False] if model.repeat_store else [True]
    client = redis_client()
    for start in range(0, len(user_ids), PRECOMPUTE_BATCH):
        batch = user_ids[start : start + PRECOMPUTE_BATCH]
        pipe = client.pipeline(transaction=False)
        for exclude_seen in variants:
            lists = model.recommend_for_users(batch, k=100, exclude_seen=exclude_seen)
            for user_id, items in zip(batch, lists, strict=True):
                key = rcache.list_key(schema, version.pk, user_id, exclude_seen=exclude_seen)
                pipe.set(key, orjson.dumps([strategy, items]), ex=ttl)
        try:
            pipe.execute()
        except redis.RedisError:
            logger.warning("precompute of v%s stopped: Redis unavailable", version.number)
            report.complete = False
            break
        report.shoppers += len(batch)
    report.seconds = time.perf_counter() - started
    logger.info(
        "precomputed v%s: %d shoppers in %.1fs", version.number, report.shoppers, report.seconds
    )
    return report


def shopper_recommendations_forget(*, user_id: str) -> int:
    """Delete the shopper's cached lists of every version of the store; returns how many
    keys were removed. Raises redis.RedisError when Redis is unreachable (erasure must then
    be retried, not reported done)."""
    schema = _schema()
    version_ids = list(ModelVersion.objects.values_list("pk", flat=True))
    keys = [
        rcache.list_key(schema, version_id, user_id, exclude_seen=flag)
        for version_id in version_ids
        for flag in (True, False)
    ]
    return int(redis_client().delete(*keys)) if keys else 0


# --- schedule ----------------------------------------------------------------------------------
@transaction.atomic
def training_schedule_ensure(*, hour: int | None = None, minute: int | None = None) -> PeriodicTask:
    """The store's nightly training as a django-celery-beat PeriodicTask in the store's schema
    (the tenant-aware beat scheduler sends it with the store's schema). Stores are spread
    between 01:00 and 04:59 UTC by a hash of the schema unless `hour`/`minute` are given. An
    existing entry keeps its enabled flag; its time is only changed when asked."""
    schema = _schema()
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


# --- experiments -------------------------------------------------------------------------------
def _arm_error(index: int, field: str, message: str) -> ApplicationError:
    return ApplicationError(
        f"Invalid arm {index}: {message}", fields={"arms": [{"index": index, field: [message]}]}
    )


@transaction.atomic
def experiment_create(
    *,
    name: str,
    arms: list[dict[str, Any]],
    actor_user=None,
    actor_api_key=None,
    actor_label: str = "",
    request: HttpRequest | None = None,
) -> Experiment:
    """Start an A/B test. `arms`: 2..10 of {"name", "traffic_percent" (integers summing to
    100), "model_version" (a version number, optional), "strategy" ("model" — default —,
    "trending", "popularity")}. The first arm is the control. Audited as `experiment.created`;
    serving picks it up after commit.

    Raises ApplicationError 400 naming the field, 409 `experiment_running` when another
    experiment runs, 403 `plan_upgrade_required` on a plan without A/B tests."""
    _schema()
    plan_feature_require(tenant=connection.tenant, feature="ab_tests")
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 100:
        raise ApplicationError(
            "An experiment name of 1 to 100 characters is required.", fields={"name": ["required"]}
        )
    if not name.isprintable():  # NUL cannot be stored; no control characters either
        raise ApplicationError(
            "The experiment name must not contain control characters.",
            fields={"name": ["no control characters"]},
        )
    if not isinstance(arms, list) or not 2 <= len(arms) <= 10:
        raise ApplicationError("An experiment needs 2 to 10 arms.", fields={"arms": ["2 to 10"]})
    clean: list[dict[str, Any]] = []
    names: set[str] = set()
    for index, arm in enumerate(arms):
        if not isinstance(arm, dict):
            raise _arm_error(index, "non_field_errors", "must be an object")
        arm_name = arm.get("name")
        if not isinstance(arm_name, str) or not arm_name.strip() or len(arm_name.strip()) > 50:
            raise _arm_error(index, "name", "a name of 1 to 50 characters is required")
        arm_name = arm_name.strip()
        if not arm_name.isprintable():
            raise _arm_error(index, "name", "must not contain control characters")
        if arm_name in names:
            raise _arm_error(index, "name", "arm names must be unique")
        names.add(arm_name)
        share = arm.get("traffic_percent")
        if type(share) is not int or not 1 <= share <= 100:
            raise _arm_error(index, "traffic_percent", "an integer from 1 to 100 is required")
        strategy = arm.get("strategy") or ExperimentArm.Strategy.MODEL
        if strategy not in ExperimentArm.Strategy.values:
            raise _arm_error(
                index, "strategy", f"one of {', '.join(ExperimentArm.Strategy.values)}"
            )
        version = None
        number = arm.get("model_version")
        if number is not None:
            if type(number) is not int:
                raise _arm_error(index, "model_version", "a version number is required")
            version = ModelVersion.objects.filter(
                number=number,
                status__in=[
                    ModelVersion.Status.READY,
                    ModelVersion.Status.ACTIVE,
                    ModelVersion.Status.RETIRED,
                ],
            ).first()
            if version is None:
                raise _arm_error(index, "model_version", f"no trained version v{number}")
        clean.append(
            {"name": arm_name, "traffic_percent": share, "strategy": strategy, "version": version}
        )
    if sum(arm["traffic_percent"] for arm in clean) != 100:
        raise ApplicationError(
            "The arms' traffic_percent must add up to 100.",
            fields={"arms": ["traffic_percent must add up to 100"]},
        )
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                name=name, created_by_label=actor_label or getattr(actor_user, "email", "")
            )
    except IntegrityError as exc:
        raise ApplicationError(
            "Another experiment is running; stop it first.",
            code="experiment_running",
            status_code=409,
        ) from exc
    ExperimentArm.objects.bulk_create(
        ExperimentArm(
            experiment=experiment,
            position=position,
            name=arm["name"],
            model_version=arm["version"],
            strategy=arm["strategy"],
            traffic_percent=arm["traffic_percent"],
        )
        for position, arm in enumerate(clean)
    )
    audit_record(
        action="experiment.created",
        actor_user=actor_user,
        actor_api_key=actor_api_key,
        actor_label=actor_label,
        target_type="experiment",
        target_id=str(experiment.pk),
        details={
            "name": name,
            "arms": [
                {
                    "name": arm["name"],
                    "traffic_percent": arm["traffic_percent"],
                    "strategy": arm["strategy"],
                    "model_version": arm["version"].number if arm["version"] else None,
                }
                for arm in clean
            ],
        },
        request=request,
    )
    schema = connection.schema_name
    transaction.on_commit(lambda: rcache.state_changed(schema))
    return experiment


@transaction.atomic
def experiment_stop(
    *,
    experiment: Experiment,
    actor_user=None,
    actor_api_key=None,
    actor_label: str = "",
    request: HttpRequest | None = None,
) -> Experiment:
    """Stop a running experiment: every shopper gets the active model again. Audited as
    `experiment.stopped`. Raises ApplicationError 409 `not_running` when already stopped."""
    _schema()
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status != Experiment.Status.RUNNING:
        raise ApplicationError(
            "This experiment is not running.", code="not_running", status_code=409
        )
    experiment.status = Experiment.Status.STOPPED
    experiment.stopped_at = timezone.now()
    experiment.save(update_fields=["status", "stopped_at"])
    audit_record(
        action="experiment.stopped",
        actor_user=actor_user,
        actor_api_key=actor_api_key,
        actor_label=actor_label,
        target_type="experiment",
        target_id=str(experiment.pk),
        details={"name": experiment.name},
        request=request,
    )
    schema = connection.schema_name
    transaction.on_commit(lambda: rcache.state_changed(schema))
    return experiment


# --- impressions -------------------------------------------------------------------------------
def impressions_persist_and_meter() -> int:
    """Copy the store's queued impressions into PostgreSQL and count them as billable
    recommendation requests (one usage increment per batch, not per request)."""
    from apps.recommendations.impressions import impressions_persist

    written = impressions_persist(schema_name=_schema())
    if written:
        try:
            from apps.billing.quotas import usage_record
        except ImportError:  # billing not installed in this deployment
            return written
        tenant = getattr(connection, "tenant", None)
        if tenant is not None:
            usage_record(tenant=tenant, metric="recommendation_requests", amount=written)
    return written
