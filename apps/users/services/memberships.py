"""Changes to a store's members: removal, role changes and ownership transfer, each checked
against the acting member's role, keeping at least one owner, and audited."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest

from apps.audit.actions import AuditAction
from apps.core.errors import ApplicationError
from apps.core.live import store_access_revoke_on_commit
from apps.tenants.models import Tenant
from apps.users.models import Membership, User
from apps.users.services.common import acting_membership, owner_count, role_clean, store_audit


def _locked_membership(membership: Membership) -> Membership:
    return (
        Membership.objects.select_for_update()
        .select_related("user", "tenant")
        .get(pk=membership.pk)
    )


@transaction.atomic
def membership_remove(
    *, membership: Membership, acting_user: User | None, request: HttpRequest | None = None
) -> None:
    """Remove a member (or leave, when the actor is the member). Needs `manage_members`
    unless leaving; only an owner removes an owner; the last owner can neither leave nor be
    removed (409 `last_owner`). Audited `member.removed`. On commit, the member's open
    dashboard sockets on this store are closed (4403)."""
    membership = _locked_membership(membership)
    tenant = membership.tenant
    leaving = acting_user is not None and acting_user.pk == membership.user_id
    actor_membership = None
    if not leaving:
        actor_membership = acting_membership(
            tenant=tenant, acting_user=acting_user, action="manage_members"
        )
    if membership.role == Membership.Role.OWNER:
        if actor_membership is not None and actor_membership.role != Membership.Role.OWNER:
            raise ApplicationError(
                "Only an owner can remove an owner.", code="permission_denied", status_code=403
            )
        if owner_count(tenant) <= 1:
            raise ApplicationError(
                "The last owner cannot leave or be removed; transfer ownership first.",
                code="last_owner",
                status_code=409,
            )
    details = {"email": membership.user.email, "role": membership.role, "left": leaving}
    target_id = str(membership.pk)
    membership.delete()
    store_audit(
        tenant,
        action=AuditAction.MEMBER_REMOVED,
        acting_user=acting_user,
        target_type="membership",
        target_id=target_id,
        details=details,
        request=request,
    )
    store_access_revoke_on_commit(schema_name=tenant.schema_name, user_id=membership.user_id)


@transaction.atomic
def membership_change_role(
    *,
    membership: Membership,
    role: str,
    acting_user: User | None,
    request: HttpRequest | None = None,
) -> Membership:
    """Change a member's role. Needs `manage_members`; granting or taking away `owner` needs
    an owner; the last owner cannot be demoted (409 `last_owner`). Audited
    `member.role_changed` with before/after. Same role: 400, nothing written."""
    membership = _locked_membership(membership)
    tenant = membership.tenant
    role = role_clean(role)
    actor_membership = acting_membership(
        tenant=tenant, acting_user=acting_user, action="manage_members"
    )
    before = membership.role
    if role == before:
        raise ApplicationError(f"The member is already {role}.", fields={"role": ["unchanged"]})
    touches_owner = Membership.Role.OWNER in (role, before)
    actor_is_owner = actor_membership is None or actor_membership.role == Membership.Role.OWNER
    if touches_owner and not actor_is_owner:
        raise ApplicationError(
            "Only an owner can grant or take away ownership.",
            code="permission_denied",
            status_code=403,
        )
    if before == Membership.Role.OWNER and owner_count(tenant) <= 1:
        raise ApplicationError(
            "The last owner cannot be demoted; transfer ownership first.",
            code="last_owner",
            status_code=409,
        )
    membership.role = role
    membership.save(update_fields=["role"])
    store_audit(
        tenant,
        action=AuditAction.MEMBER_ROLE_CHANGED,
        acting_user=acting_user,
        target_type="membership",
        target_id=str(membership.pk),
        details={
            "email": membership.user.email,
            "before": {"role": before},
            "after": {"role": role},
        },
        request=request,
    )
    return membership


@transaction.atomic
def membership_transfer_ownership(
    *,
    tenant: Tenant,
    to_membership: Membership,
    acting_user: User,
    request: HttpRequest | None = None,
) -> Membership:
    """The acting owner makes another member owner and becomes admin. Audited once as
    `member.ownership_transferred`. 403 unless the actor is an owner; 400 to oneself."""
    actor_membership = acting_membership(
        tenant=tenant, acting_user=acting_user, action="manage_billing"
    )
    target = _locked_membership(to_membership)
    if target.tenant_id != tenant.pk:
        raise ApplicationError("No such member.", code="not_found", status_code=404)
    if target.pk == actor_membership.pk:
        raise ApplicationError("You already own this store.", fields={"member": ["is yourself"]})
    target_before = target.role
    target.role = Membership.Role.OWNER
    target.save(update_fields=["role"])
    actor_membership.role = Membership.Role.ADMIN
    actor_membership.save(update_fields=["role"])
    store_audit(
        tenant,
        action=AuditAction.MEMBER_OWNERSHIP_TRANSFERRED,
        acting_user=acting_user,
        target_type="membership",
        target_id=str(target.pk),
        details={
            "to": {"email": target.user.email, "before": target_before, "after": "owner"},
            "from": {"email": acting_user.email, "before": "owner", "after": "admin"},
        },
        request=request,
    )
    return target
