"""The one place billing tells a store something: the store's audit trail, and its owners.

Billing rows live in the public schema, but the store's owner reads the store's trail, so
billing audit events are written into the STORE schema (`schema_context`), inside the caller's
transaction (both schemas share the one database connection and transaction). Owners are told
through the notifications app (`billing_notify`): in-app, by email as their preferences say,
and to the store's webhooks subscribed to the kind — all delivered on commit.
"""

from __future__ import annotations

from typing import Any

from django_tenants.utils import schema_context, tenant_context

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.notifications.services import notification_send
from apps.tenants.models import Tenant
from apps.users.models import Membership

BILLING_LINK = "/billing/"


def billing_audit(
    *,
    tenant: Tenant,
    action: AuditAction,
    details: dict[str, Any],
    acting_user=None,
    actor_label: str = "stripe",
    request=None,
) -> None:
    """Append a billing event to the store's own audit trail (in the caller's transaction)."""
    with schema_context(tenant.schema_name):
        audit_record(
            action=action,
            acting_user=acting_user,
            actor_label="" if acting_user is not None else actor_label,
            target_type="billing",
            target_id=str(tenant.pk),
            details=details,
            request=request,
        )


def owner_ids(tenant: Tenant) -> list[int]:
    return list(
        Membership.objects.filter(
            tenant_id=tenant.pk, role=Membership.Role.OWNER, user__is_active=True
        )
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )


def billing_notify(*, tenant: Tenant, kind: str, subject: str, body: str) -> None:
    """Notify the store's owners of a billing event of `kind` ("quota.warning" or
    "billing.event") through `notification_send`, in the caller's transaction: an in-app
    notification and an email as each owner's preferences say (both kinds email by default;
    one email path, so nobody gets two), plus a delivery to every store webhook subscribed to
    `kind`. `subject` is a lower-case phrase ("a payment failed"); the title capitalises it.
    Nothing leaves before the caller commits. A store without owners still gets its webhooks.
    """
    with tenant_context(tenant):
        notification_send(
            kind=kind,
            title=subject[:1].upper() + subject[1:],
            body=body,
            link=BILLING_LINK,
            user_ids=owner_ids(tenant),
        )
