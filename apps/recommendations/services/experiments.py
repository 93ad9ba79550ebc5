"""A/B tests of a store: starting one with its arms (validated field by field) and stopping it."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.billing.entitlements import plan_feature_require
from apps.core.errors import ApplicationError
from apps.recommendations import cache as rcache
from apps.recommendations.models import Experiment, ExperimentArm, ModelVersion
from apps.recommendations.services.common import store_schema
from apps.users.models import User


def _arm_error(index: int, field: str, message: str) -> ApplicationError:
    return ApplicationError(
        f"Invalid arm {index}: {message}", fields={"arms": [{"index": index, field: [message]}]}
    )


@transaction.atomic
def experiment_create(
    *,
    name: str,
    arms: list[dict[str, Any]],
    acting_user: User | None = None,
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
    store_schema()
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
                name=name, created_by_label=actor_label or getattr(acting_user, "email", "")
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
        action=AuditAction.EXPERIMENT_CREATED,
        acting_user=acting_user,
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
    acting_user: User | None = None,
    actor_api_key=None,
    actor_label: str = "",
    request: HttpRequest | None = None,
) -> Experiment:
    """Stop a running experiment: every shopper gets the active model again. Audited as
    `experiment.stopped`. Raises ApplicationError 409 `not_running` when already stopped."""
    store_schema()
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status != Experiment.Status.RUNNING:
        raise ApplicationError(
            "This experiment is not running.", code="not_running", status_code=409
        )
    experiment.status = Experiment.Status.STOPPED
    experiment.stopped_at = timezone.now()
    experiment.save(update_fields=["status", "stopped_at"])
    audit_record(
        action=AuditAction.EXPERIMENT_STOPPED,
        acting_user=acting_user,
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
