"""Reads on users and memberships."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from apps.tenants.models import Tenant
from apps.users.models import Invitation, Membership, User


def membership_role(*, user: User, tenant: Tenant) -> str | None:
    """The user's role in the store, or None if they are not a member."""
    return (
        Membership.objects.filter(user=user, tenant_id=tenant.pk)
        .values_list("role", flat=True)
        .first()
    )


def user_memberships(*, user: User) -> QuerySet[Membership]:
    """The user's active stores, by name."""
    return (
        Membership.objects.filter(user_id=user.pk, tenant__status=Tenant.Status.ACTIVE)
        .exclude(tenant__schema_name="public")
        .select_related("tenant")
        .order_by("tenant__name", "tenant__slug")
    )


def store_members(*, tenant: Tenant) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(tenant_id=tenant.pk)
        .select_related("user")
        .order_by("user__email")
    )


def store_pending_invitations(*, tenant: Tenant) -> QuerySet[Invitation]:
    return Invitation.objects.filter(tenant_id=tenant.pk, status=Invitation.Status.PENDING)


def pending_invitation_exists(*, email: str) -> bool:
    return Invitation.objects.filter(
        email=email.strip().lower(), status=Invitation.Status.PENDING
    ).exists()


def store_seats_taken(*, tenant: Tenant, now=None) -> int:
    """Members plus invitations still waiting for an answer: each holds a seat."""
    members = Membership.objects.filter(tenant_id=tenant.pk).count()
    waiting = Invitation.objects.filter(
        tenant_id=tenant.pk, status=Invitation.Status.PENDING, expires_at__gt=now or timezone.now()
    ).count()
    return members + waiting
