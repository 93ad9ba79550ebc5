"""Audit of MFA changes and MFA failures. allauth announces these only through signals, so
these receivers are thin: they name the event and call the audit service."""

from __future__ import annotations

from allauth.mfa import signals as mfa_signals
from django.conf import settings
from django.dispatch import receiver
from django_tenants.utils import schema_context

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record

_ACTIONS = {
    ("added", "totp"): AuditAction.MFA_ENABLED,
    ("removed", "totp"): AuditAction.MFA_DISABLED,
    ("added", "recovery_codes"): AuditAction.MFA_RECOVERY_CODES_CREATED,
    ("removed", "recovery_codes"): AuditAction.MFA_RECOVERY_CODES_REMOVED,
    ("reset", "recovery_codes"): AuditAction.MFA_RECOVERY_CODES_REGENERATED,
}


def _record(change: str, request, user, authenticator) -> None:
    action = _ACTIONS.get((change, authenticator.type))
    if action is None:
        return
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        audit_record(
            action=action,
            acting_user=user,
            target_type="user",
            target_id=str(user.pk),
            details={"authenticator": authenticator.type},
            request=request,
        )


@receiver(mfa_signals.authenticator_added)
def _mfa_added(sender, request, user, authenticator, **kwargs) -> None:
    _record("added", request, user, authenticator)


@receiver(mfa_signals.authenticator_removed)
def _mfa_removed(sender, request, user, authenticator, **kwargs) -> None:
    _record("removed", request, user, authenticator)


@receiver(mfa_signals.authenticator_reset)
def _mfa_reset(sender, request, user, authenticator, **kwargs) -> None:
    _record("reset", request, user, authenticator)


@receiver(mfa_signals.authentication_failed)
def _mfa_failed(sender, request, user, authenticator, **kwargs) -> None:
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        audit_record(
            action=AuditAction.AUTH_LOGIN_FAILED,
            acting_user=user,
            target_type="user",
            target_id=str(user.pk),
            details={"email": user.email, "reason": f"bad_{authenticator.type}_code"},
            request=request,
        )
