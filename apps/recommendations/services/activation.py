"""Which trained version serves a store: the swap shared by training, manual activation and
rollback (audit, notification, the serving processes told after commit, lists precomputed)."""

from __future__ import annotations

from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.core.dispatch import dispatch_on_commit
from apps.core.errors import ApplicationError
from apps.core.live import store_push_on_commit
from apps.notifications.kinds import Severity
from apps.notifications.services import notification_send
from apps.recommendations import cache as rcache
from apps.recommendations.models import ModelVersion
from apps.recommendations.services.common import MODELS_LINK, store_schema
from apps.recommendations.services.precompute import Precompute, recommendations_precompute
from apps.users.models import User


def _ndcg_text(ndcg: float | None) -> str:
    return "n/a" if ndcg is None else f"{ndcg:.4f}"


def _activation_text(*, version: ModelVersion, previous: ModelVersion | None, reason: str) -> str:
    replaced = f" It replaces v{previous.number}." if previous is not None else ""
    because = f" Reason: {reason.rstrip('.')}." if reason else ""
    return f"NDCG@10 {_ndcg_text(version.ndcg)}.{replaced}{because}"


def active_version_swap(
    *,
    version: ModelVersion,
    previous: ModelVersion | None,
    action: AuditAction,
    reason: str = "",
    acting_user: User | None = None,
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
        acting_user=acting_user,
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
    rollback = action == AuditAction.MODEL_ROLLED_BACK
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
    store_push_on_commit(
        {"type": "model.activated", "model_version": version.pk, "number": version.number},
        schema_name=schema,
    )
    if precompute == "async":
        from apps.recommendations.tasks import precompute_recommendations

        dispatch_on_commit(precompute_recommendations, version.pk)
    elif precompute == "sync":
        transaction.on_commit(lambda: recommendations_precompute(version_id=version.pk))
    return version


@transaction.atomic
def model_version_activate(
    *,
    version: ModelVersion,
    acting_user: User | None = None,
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
    store_schema()
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
    return active_version_swap(
        version=version,
        previous=previous,
        action=AuditAction.MODEL_ACTIVATED,
        reason=reason or "manual",
        acting_user=acting_user,
        actor_api_key=actor_api_key,
        actor_label=actor_label,
        request=request,
        precompute=precompute,
    )


@transaction.atomic
def model_version_rollback(
    *,
    acting_user: User | None = None,
    actor_api_key=None,
    actor_label: str = "",
    request: HttpRequest | None = None,
    precompute: Precompute = "async",
) -> ModelVersion:
    """Re-activate the version that was active before the current one; the current one is
    retired. Audited as `model.rolled_back`. Raises ApplicationError 409 `no_previous_version`
    when there is nothing to roll back to."""
    store_schema()
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
    return active_version_swap(
        version=previous,
        previous=current,
        action=AuditAction.MODEL_ROLLED_BACK,
        reason=f"rollback from v{current.number}" if current else "rollback",
        acting_user=acting_user,
        actor_api_key=actor_api_key,
        actor_label=actor_label,
        request=request,
        precompute=precompute,
    )
