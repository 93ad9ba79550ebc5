"""Reads of the current store's notifications, preferences and webhooks."""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet

from apps.notifications.kinds import KINDS, Channel, channel_default
from apps.notifications.models import (
    Notification,
    NotificationPreference,
    WebhookDelivery,
    WebhookEndpoint,
)
from apps.users.models import Membership, User

INBOX_PAGE_SIZE = 50


def store_member_ids() -> list[int]:
    """Ids of the members of the connection's store."""
    return list(
        Membership.objects.filter(tenant_id=connection.tenant.pk)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )


def notification_inbox(*, user: User, unread_only: bool = False) -> QuerySet[Notification]:
    notifications = Notification.objects.filter(user_id=user.pk)
    if unread_only:
        notifications = notifications.filter(read=False)
    return notifications.order_by("-created_at", "-id")


def notification_unread_count(*, user: User) -> int:
    return Notification.objects.filter(user_id=user.pk, read=False).count()


def preference_matrix(*, user_ids: list[int]) -> dict[int, dict[tuple[str, str], bool]]:
    """For each user: {(kind, channel): enabled} over every kind and personal channel, the
    stored choice where there is one, else the default."""
    stored = {
        (pref.user_id, pref.kind, pref.channel): pref.enabled
        for pref in NotificationPreference.objects.filter(user_id__in=user_ids)
    }
    return {
        user_id: {
            (kind, channel): stored.get((user_id, kind, channel), channel_default(kind, channel))
            for kind in KINDS
            for channel in Channel.PERSONAL
        }
        for user_id in user_ids
    }


def webhook_endpoint_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("id")


def webhook_delivery_list(*, endpoint_id: int | None = None) -> QuerySet[WebhookDelivery]:
    deliveries = WebhookDelivery.objects.select_related("endpoint").prefetch_related("log")
    if endpoint_id is not None:
        deliveries = deliveries.filter(endpoint_id=endpoint_id)
    return deliveries.order_by("-created_at", "-id")
