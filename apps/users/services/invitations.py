"""Invitations to a store: signed links, inviting (seat-limited, audited, emailed on commit),
accepting, declining and revoking."""

from __future__ import annotations

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
from apps.billing.entitlements import plan_limit_check
from apps.core.errors import ApplicationError
from apps.notifications.services import notification_send
from apps.tenants.models import Tenant
from apps.tenants.selectors import public_url
from apps.users.models import Invitation, Membership, User
from apps.users.selectors import store_seats_taken
from apps.users.services.common import acting_membership, role_clean, store_audit

INVITATION_SALT = "shelfsense.users.invitation"


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


@transaction.atomic
def membership_invite(
    *,
    tenant: Tenant,
    email: str,
    role: str,
    acting_user: User | None = None,
    actor_label: str = "",
    request: HttpRequest | None = None,
) -> Invitation:
    """Invite `email` to the store with `role` (not owner: ownership is transferred). Emails
    the signed link on commit. Audited `member.invited`. Errors: 403 if the inviter may not
    manage members or every seat of the plan is taken (members and pending invitations), 400
    bad email/role, 409 already a member or already invited."""
    acting_membership(tenant=tenant, acting_user=acting_user, action="manage_members")
    email = User.objects.normalize_email((email or "").strip()).lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ApplicationError(
            "Enter a valid email address.", fields={"email": ["invalid"]}
        ) from exc
    role = role_clean(role)
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
        tenant=tenant,
        limit="team_seats",
        in_use=store_seats_taken(tenant=tenant, now=now),
        field="email",
    )
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        invited_by=acting_user,
        expires_at=now + timedelta(days=settings.INVITATION_MAX_AGE_DAYS),
    )
    store_audit(
        tenant,
        action=AuditAction.MEMBER_INVITED,
        acting_user=acting_user,
        actor_label=actor_label,
        target_type="invitation",
        target_id=str(invitation.pk),
        details={"email": email, "role": role, "expires_at": invitation.expires_at.isoformat()},
        request=request,
    )
    link = invitation_url(invitation)
    inviter = acting_user.email if acting_user else "ShelfSense"
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
    *, invitation: Invitation, acting_user: User, request: HttpRequest | None = None
) -> Membership:
    """The invited user joins the store with the invited role. The signed-in user's email
    must be the invited one (403 otherwise). Audited `member.joined`; the store's owners and
    admins are notified (kind `member.joined`, delivered on commit)."""
    invitation = _pending(invitation)
    if acting_user.email.lower() != invitation.email:
        raise ApplicationError(
            f"This invitation is for {invitation.email}; sign in with that address.",
            code="wrong_account",
            status_code=403,
        )
    tenant = invitation.tenant
    if not Membership.objects.filter(user=acting_user, tenant=tenant).exists():
        # The plan may have shrunk since the invitation was sent.
        members = Membership.objects.filter(tenant_id=tenant.pk).count()
        plan_limit_check(tenant=tenant, limit="team_seats", in_use=members)
    membership, created = Membership.objects.get_or_create(
        user=acting_user, tenant=tenant, defaults={"role": invitation.role}
    )
    if not created:
        raise ApplicationError(
            "You are already a member of this store.", code="already_member", status_code=409
        )
    invitation.status = Invitation.Status.ACCEPTED
    invitation.responded_at = timezone.now()
    invitation.save(update_fields=["status", "responded_at"])
    store_audit(
        tenant,
        action=AuditAction.MEMBER_JOINED,
        acting_user=acting_user,
        target_type="membership",
        target_id=str(membership.pk),
        details={"email": acting_user.email, "role": membership.role, "invitation": invitation.pk},
        request=request,
    )
    _member_joined_notify(tenant=tenant, membership=membership, email=acting_user.email)
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
    *, invitation: Invitation, acting_user: User | None = None, request: HttpRequest | None = None
) -> Invitation:
    """Anyone holding the link may decline it. Audited `member.invitation_declined`."""
    invitation = _pending(invitation)
    invitation.status = Invitation.Status.DECLINED
    invitation.responded_at = timezone.now()
    invitation.save(update_fields=["status", "responded_at"])
    store_audit(
        invitation.tenant,
        action=AuditAction.MEMBER_INVITATION_DECLINED,
        acting_user=acting_user,
        actor_label="" if acting_user else invitation.email,
        target_type="invitation",
        target_id=str(invitation.pk),
        details={"email": invitation.email, "role": invitation.role},
        request=request,
    )
    return invitation


@transaction.atomic
def invitation_revoke(
    *, invitation: Invitation, acting_user: User | None, request: HttpRequest | None = None
) -> Invitation:
    """Withdraw a pending invitation. Audited `member.invitation_revoked`."""
    acting_membership(tenant=invitation.tenant, acting_user=acting_user, action="manage_members")
    invitation = _pending(invitation)
    invitation.status = Invitation.Status.REVOKED
    invitation.responded_at = timezone.now()
    invitation.save(update_fields=["status", "responded_at"])
    store_audit(
        invitation.tenant,
        action=AuditAction.MEMBER_INVITATION_REVOKED,
        acting_user=acting_user,
        target_type="invitation",
        target_id=str(invitation.pk),
        details={"email": invitation.email, "role": invitation.role},
        request=request,
    )
    return invitation
