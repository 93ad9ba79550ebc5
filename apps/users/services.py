"""Writes on users."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.billing.entitlements import plan_limit_check
from apps.core.errors import ApplicationError
from apps.notifications.services import notification_send
from apps.tenants.models import Tenant
from apps.tenants.selectors import public_url
from apps.users.models import Invitation, Membership, User
from apps.users.permissions import can

INVITATION_SALT = "shelfsense.users.invitation"


@transaction.atomic
def user_get_or_create_for_email(*, email: str) -> tuple[User, str | None]:
    """The user with this email, created with a random password if new.

    Returns (user, password) where password is the generated one for a new user (to show
    once) and None for an existing user.
    """
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email=email).first()
    if user is not None:
        return user, None
    password = secrets.token_urlsafe(12)
    return User.objects.create_user(email=email, password=password), password


@transaction.atomic
def user_email_verify(*, user: User) -> None:
    """Mark the user's own address verified and primary in allauth (accounts made by staff
    commands, whose address nobody has to confirm by email). Idempotent; any other address
    of the user stops being primary."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.filter(user=user, primary=True).exclude(email=user.email).update(
        primary=False
    )
    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )


# --- Memberships and invitations ----------------------------------------------------------------
# Memberships live in the public schema; their audit events go to the store's own trail (same
# database transaction: switching the schema only changes the search path).


def _store_audit(tenant: Tenant, **kwargs) -> None:
    with tenant_context(tenant):
        audit_record(**kwargs)


def _actor_membership(*, tenant: Tenant, actor: User | None, action: str) -> Membership | None:
    """The actor's membership, checked against the matrix; None for the system (commands)."""
    if actor is None:
        return None
    membership = (
        Membership.objects.select_for_update().filter(tenant_id=tenant.pk, user_id=actor.pk).first()
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


def _clean_role(role: str, *, field: str = "role") -> str:
    role = (role or "").strip().lower()
    if role not in Membership.Role.values:
        raise ApplicationError(
            f"Unknown role {role!r}; one of {', '.join(Membership.Role.values)}.",
            fields={field: ["invalid choice"]},
        )
    return role


def _owner_count(tenant: Tenant) -> int:
    # Locks every owner row, so two concurrent demotions cannot both pass the check.
    return len(
        Membership.objects.select_for_update()
        .filter(tenant_id=tenant.pk, role=Membership.Role.OWNER)
        .values_list("id", flat=True)
    )


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps({"i": invitation.pk, "e": invitation.email}, salt=INVITATION_SALT)


def invitation_url(invitation: Invitation) -> str:
    return public_url(f"/invitations/{invitation_token(invitation)}/")


def invitation_from_token(token: str) -> Invitation:
    """The invitation a link names. Raises ApplicationError 404 for a bad or expired link."""
    max_age = timedelta(days=settings.INVITATION_MAX_AGE_DAYS)
    try:
        payload = signing.loads(token, salt=INVITATION_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise ApplicationError(
            "This invitation has expired.", code="invitation_expired", status_code=410
        ) from exc
    except signing.BadSignature as exc:
        raise ApplicationError(
            "This invitation link is not valid.", code="invitation_invalid", status_code=404
        ) from exc
    invitation = (
        Invitation.objects.select_related("tenant", "invited_by")
        .filter(pk=payload.get("i"), email=payload.get("e"))
        .first()
    )
    if invitation is None:
        raise ApplicationError(
            "This invitation link is not valid.", code="invitation_invalid", status_code=404
        )
    return invitation


def _seats_taken(tenant: Tenant, now) -> int:
    """Members plus invitations still waiting for an answer: each holds a seat."""
    members = Membership.objects.filter(tenant_id=tenant.pk).count()
    waiting = Invitation.objects.filter(
        tenant_id=tenant.pk, status=Invitation.Status.PENDING, expires_at__gt=now
    ).count()
    return members + waiting


@transaction.atomic
def membership_invite(
    *,
    tenant: Tenant,
    email: str,
    role: str,
    invited_by: User | None = None,
    actor_label: str = "",
    request: HttpRequest | None = None,
) -> Invitation:
    """Invite `email` to the store with `role` (not owner: ownership is transferred). Emails
    the signed link on commit. Audited `member.invited`. Errors: 403 if the inviter may not
    manage members or every seat of the plan is taken (members and pending invitations), 400
    bad email/role, 409 already a member or already invited."""
    _actor_membership(tenant=tenant, actor=invited_by, action="manage_members")
    email = User.objects.normalize_email((email or "").strip()).lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ApplicationError(
            "Enter a valid email address.", fields={"email": ["invalid"]}
        ) from exc
    role = _clean_role(role)
    if role == Membership.Role.OWNER:
        raise ApplicationError(
            "Invite with another role, then transfer ownership.",
            fields={"role": ["owner cannot be invited"]},
        )
    if Membership.objects.filter(tenant_id=tenant.pk, user__email=email).exists():
        raise ApplicationError(
            f"{email} is already a member of this store.",
            code="already_member",
            status_code=409,
            fields={"email": ["already a member"]},
        )
    pending = Invitation.objects.select_for_update().filter(
        tenant_id=tenant.pk, email=email, status=Invitation.Status.PENDING
    )
    for stale in pending:
        if not stale.is_expired():
            raise ApplicationError(
                f"{email} already has a pending invitation.",
                code="already_invited",
                status_code=409,
                fields={"email": ["already invited"]},
            )
        stale.status = Invitation.Status.REVOKED
        stale.save(update_fields=["status"])
    now = timezone.now()
    plan_limit_check(
        tenant=tenant, limit="team_seats", in_use=_seats_taken(tenant, now), field="email"
    )
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        invited_by=invited_by,
        expires_at=now + timedelta(days=settings.INVITATION_MAX_AGE_DAYS),
    )
    _store_audit(
        tenant,
        action=AuditAction.MEMBER_INVITED,
        actor_user=invited_by,
        actor_label=actor_label,
        target_type="invitation",
        target_id=str(invitation.pk),
        details={"email": email, "role": role, "expires_at": invitation.expires_at.isoformat()},
        request=request,
    )
    link = invitation_url(invitation)
    inviter = invited_by.email if invited_by else "ShelfSense"
    transaction.on_commit(
        lambda: send_mail(
            f"[ShelfSense] {inviter} invited you to {tenant.name}",
            f"{inviter} invited you to join the store {tenant.name} as {role}.\n\n"
            f"Accept or decline: {link}\n\n"
            f"The link expires in {settings.INVITATION_MAX_AGE_DAYS} days.",
            None,
            [email],
        )
    )
    return invitation


def _pending(invitation: Invitation) -> Invitation:
    invitation = (
        Invitation.objects.select_for_update().select_related("tenant").get(pk=invitation.pk)
    )
    if invitation.status != Invitation.Status.PENDING:
        raise ApplicationError(
            f"This invitation is already {invitation.status}.",
            code="invitation_closed",
            status_code=409,
        )
    if invitation.is_expired():
        raise ApplicationError(
            "This invitation has expired.", code="invitation_expired", status_code=410
        )
    return invitation


@transaction.atomic
def invitation_accept(
    *, invitation: Invitation, user: User, request: HttpRequest | None = None
) -> Membership:
    """The invited user joins the store with the invited role. The signed-in user's email
    must be the invited one (403 otherwise). Audited `member.joined`; the store's owners and
    admins are notified (kind `member.joined`, delivered on commit)."""
    invitation = _pending(invitation)
    if user.email.lower() != invitation.email:
        raise ApplicationError(
            f"This invitation is for {invitation.email}; sign in with that address.",
            code="wrong_account",
            status_code=403,
        )
    tenant = invitation.tenant
    if not Membership.objects.filter(user=user, tenant=tenant).exists():
        # The plan may have shrunk since the invitation was sent.
        members = Membership.objects.filter(tenant_id=tenant.pk).count()
        plan_limit_check(tenant=tenant, limit="team_seats", in_use=members)
    membership, created = Membership.objects.get_or_create(
        user=user, tenant=tenant, defaults={"role": invitation.role}
    )
    if not created:
        raise ApplicationError(
            "You are already a member of this store.", code="already_member", status_code=409
        )
    invitation.status = Invitation.Status.ACCEPTED
    invitation.responded_at = timezone.now()
    invitation.save(update_fields=["status", "responded_at"])
    _store_audit(
        tenant,
        action=AuditAction.MEMBER_JOINED,
        actor_user=user,
        target_type="membership",
        target_id=str(membership.pk),
        details={"email": user.email, "role": membership.role, "invitation": invitation.pk},
        request=request,
    )
    _member_joined_notify(tenant=tenant, membership=membership, email=user.email)
    return membership


def _member_joined_notify(*, tenant: Tenant, membership: Membership, email: str) -> None:
    """Tell the store's owners and admins (not the newcomer) in the caller's transaction."""
    managers = Membership.objects.filter(
        tenant_id=tenant.pk, role__in=[Membership.Role.OWNER, Membership.Role.ADMIN]
    ).exclude(pk=membership.pk)
    user_ids = list(managers.values_list("user_id", flat=True))
    if not user_ids:
        return
    with tenant_context(tenant):
        notification_send(
            kind="member.joined",
            title=f"{email} joined the store",
            body=f"{email} accepted the invitation and joined {tenant.name} as {membership.role}.",
            link="/team/",
            data={"email": email, "role": membership.role, "membership": membership.pk},
            user_ids=user_ids,
        )


@transaction.atomic
def invitation_decline(
    *, invitation: Invitation, user: User | None = None, request: HttpRequest | None = None
) -> Invitation:
    """Anyone holding the link may decline it. Audited `member.invitation_declined`."""
    invitation = _pending(invitation)
    invitation.status = Invitation.Status.DECLINED
    invitation.responded_at = timezone.now()
    invitation.save(update_fields=["status", "responded_at"])
    _store_audit(
        invitation.tenant,
        action=AuditAction.MEMBER_INVITATION_DECLINED,
        actor_user=user,
        actor_label="" if user else invitation.email,
        target_type="invitation",
        target_id=str(invitation.pk),
        details={"email": invitation.email, "role": invitation.role},
        request=request,
    )
    return invitation


@transaction.atomic
def invitation_revoke(
    *, invitation: Invitation, actor: User | None, request: HttpRequest | None = None
) -> Invitation:
    """Withdraw a pending invitation. Audited `member.invitation_revoked`."""
    _actor_membership(tenant=invitation.tenant, actor=actor, action="manage_members")
    invitation = _pending(invitation)
    invitation.status = Invitation.Status.REVOKED
    invitation.responded_at = timezone.now()
    invitation.save(update_fields=["status", "responded_at"])
    _store_audit(
        invitation.tenant,
        action=AuditAction.MEMBER_INVITATION_REVOKED,
        actor_user=actor,
        target_type="invitation",
        target_id=str(invitation.pk),
        details={"email": invitation.email, "role": invitation.role},
        request=request,
    )
    return invitation


def _locked_membership(membership: Membership) -> Membership:
    return (
        Membership.objects.select_for_update()
        .select_related("user", "tenant")
        .get(pk=membership.pk)
    )


@transaction.atomic
def membership_remove(
    *, membership: Membership, actor: User | None, request: HttpRequest | None = None
) -> None:
    """Remove a member (or leave, when the actor is the member). Needs `manage_members`
    unless leaving; only an owner removes an owner; the last owner can neither leave nor be
    removed (409 `last_owner`). Audited `member.removed`."""
    membership = _locked_membership(membership)
    tenant = membership.tenant
    leaving = actor is not None and actor.pk == membership.user_id
    actor_membership = None
    if not leaving:
        actor_membership = _actor_membership(tenant=tenant, actor=actor, action="manage_members")
    if membership.role == Membership.Role.OWNER:
        if actor_membership is not None and actor_membership.role != Membership.Role.OWNER:
            raise ApplicationError(
                "Only an owner can remove an owner.", code="permission_denied", status_code=403
            )
        if _owner_count(tenant) <= 1:
            raise ApplicationError(
                "The last owner cannot leave or be removed; transfer ownership first.",
                code="last_owner",
                status_code=409,
            )
    details = {"email": membership.user.email, "role": membership.role, "left": leaving}
    target_id = str(membership.pk)
    membership.delete()
    _store_audit(
        tenant,
        action=AuditAction.MEMBER_REMOVED,
        actor_user=actor,
        target_type="membership",
        target_id=target_id,
        details=details,
        request=request,
    )


@transaction.atomic
def membership_change_role(
    *, membership: Membership, role: str, actor: User | None, request: HttpRequest | None = None
) -> Membership:
    """Change a member's role. Needs `manage_members`; granting or taking away `owner` needs
    an owner; the last owner cannot be demoted (409 `last_owner`). Audited
    `member.role_changed` with before/after. Same role: 400, nothing written."""
    membership = _locked_membership(membership)
    tenant = membership.tenant
    role = _clean_role(role)
    actor_membership = _actor_membership(tenant=tenant, actor=actor, action="manage_members")
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
    if before == Membership.Role.OWNER and _owner_count(tenant) <= 1:
        raise ApplicationError(
            "The last owner cannot be demoted; transfer ownership first.",
            code="last_owner",
            status_code=409,
        )
    membership.role = role
    membership.save(update_fields=["role"])
    _store_audit(
        tenant,
        action=AuditAction.MEMBER_ROLE_CHANGED,
        actor_user=actor,
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
    *, tenant: Tenant, to_membership: Membership, actor: User, request: HttpRequest | None = None
) -> Membership:
    """The acting owner makes another member owner and becomes admin. Audited once as
    `member.ownership_transferred`. 403 unless the actor is an owner; 400 to oneself."""
    actor_membership = _actor_membership(tenant=tenant, actor=actor, action="manage_billing")
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
    _store_audit(
        tenant,
        action=AuditAction.MEMBER_OWNERSHIP_TRANSFERRED,
        actor_user=actor,
        target_type="membership",
        target_id=str(target.pk),
        details={
            "to": {"email": target.user.email, "before": target_before, "after": "owner"},
            "from": {"email": actor.email, "before": "owner", "after": "admin"},
        },
        request=request,
    )
    return target
