"""What the membership and invitation services share: the store's audit trail (memberships live
in the public schema; their audit events go to the store's own trail in the same database
transaction, since switching the schema only changes the search path), the acting member's
permission check, role validation and the owner count."""

from __future__ import annotations

from django_tenants.utils import tenant_context

from apps.audit.services import audit_record
from apps.core.errors import ApplicationError
from apps.tenants.models import Tenant
from apps.users.models import Membership, User
from apps.users.permissions import can


def store_audit(tenant: Tenant, **kwargs) -> None:
    with tenant_context(tenant):
        audit_record(**kwargs)


def acting_membership(
    *, tenant: Tenant, acting_user: User | None, action: str
) -> Membership | None:
    """The actor's membership, checked against the matrix; None for the system (commands)."""
    if acting_user is None:
        return None
    membership = (
        Membership.objects.select_for_update()
        .filter(tenant_id=tenant.pk, user_id=acting_user.pk)
        .first()
    )
    if membership is None:
        raise ApplicationError(
            "You are not a member of this store.", code="not_a_member", status_code=403
        )
    if not can(membership.role, action):
        raise ApplicationError(
            f"Your role ({membership.role}) does not allow this.",
            code="permission_denied",
            status_code=403,
        )
    return membership


def role_clean(role: str, *, field: str = "role") -> str:
    role = (role or "").strip().lower()
    if role not in Membership.Role.values:
        raise ApplicationError(
            f"Unknown role {role!r}; one of {', '.join(Membership.Role.values)}.",
            fields={field: ["invalid choice"]},
        )
    return role


def owner_count(tenant: Tenant) -> int:
    # Locks every owner row, so two concurrent demotions cannot both pass the check.
    return len(
        Membership.objects.select_for_update()
        .filter(tenant_id=tenant.pk, role=Membership.Role.OWNER)
        .values_list("id", flat=True)
    )
