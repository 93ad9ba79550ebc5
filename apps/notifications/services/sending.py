"""Sending notifications: the fan-out of one event to the store's members (in-app, email) and
its webhooks, the notification emails, marking read and members' preferences. Pushes, emails and
webhook deliveries leave only after the transaction that created them commits."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone

from apps.core.dispatch import dispatch_on_commit
from apps.core.errors import ApplicationError
from apps.core.live import store_push_on_commit
from apps.notifications import selectors
from apps.notifications.kinds import KINDS, Channel
from apps.notifications.models import (
    Notification,
    NotificationPreference,
    WebhookDelivery,
    WebhookEndpoint,
)
from apps.tenants.selectors import store_url
from apps.users.models import User


def kind_validate(kind: str) -> None:
    if kind not in KINDS:
        raise ApplicationError(f"Unknown notification kind: {kind}.", fields={"kind": ["unknown"]})


@transaction.atomic
def notification_send(
    *,
    kind: str,
    title: str,
    body: str = "",
    link: str = "",
    severity: str | None = None,
    data: dict[str, Any] | None = None,
    user_ids: Iterable[int] | None = None,
) -> list[Notification]:
    """Notify the members of the connection's store (or only `user_ids` among them) of one
    event of `kind`.

    Each member gets an in-app notification (pushed live to their open dashboards) and/or an
    email, as their preferences say; every active store webhook subscribed to `kind` gets a
    signed delivery. Returns the in-app notifications created. Emails, deliveries and pushes
    are dispatched on commit. Raises ApplicationError for an unknown kind.
    """
    from apps.notifications import tasks

    kind_validate(kind)
    severity = severity or KINDS[kind].severity
    data = data or {}
    members = selectors.store_member_ids()
    recipients = members if user_ids is None else [uid for uid in members if uid in set(user_ids)]
    prefs = selectors.preference_matrix(user_ids=recipients)
    now = timezone.now()

    in_app = [uid for uid in recipients if prefs[uid][(kind, Channel.IN_APP)]]
    created = Notification.objects.bulk_create(
        Notification(
            user_id=uid,
            kind=kind,
            severity=severity,
            title=title[:200],
            body=body,
            link=link,
            data=data,
            created_at=now,
        )
        for uid in in_app
    )
    if created:
        store_push_on_commit(
            {
                "type": "notification",
                "kind": kind,
                "severity": severity,
                "title": title[:200],
                "body": body,
                "link": link,
                "created_at": now.isoformat(),
                # The consumer forwards the message only to these users, each with their own id.
                "recipients": {str(n.user_id): n.pk for n in created},
            }
        )

    for uid in recipients:
        if prefs[uid][(kind, Channel.EMAIL)]:
            dispatch_on_commit(
                tasks.notification_email_send,
                user_id=uid,
                subject=f"[{connection.tenant.name}] {title[:150]}",
                message=_email_text(body=body, link=link),
            )

    body_json = json.dumps(
        {
            "kind": kind,
            "severity": severity,
            "store": connection.tenant.slug,
            "title": title,
            "body": body,
            "link": store_url(connection.tenant, link) if link else "",
            "data": data,
            "created_at": now.isoformat(),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    for endpoint in WebhookEndpoint.objects.filter(is_active=True, kinds__contains=[kind]):
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            kind=kind,
            body=body_json
            if endpoint.format == WebhookEndpoint.Format.SHELFSENSE
            else _slack_body(title=title, body=body, link=link, severity=severity),
        )
        dispatch_on_commit(tasks.webhook_deliver, delivery_id=delivery.pk)
    return created


def _email_text(*, body: str, link: str) -> str:
    lines = [body] if body else []
    if link:
        lines.append(store_url(connection.tenant, link))
    lines.append("")
    lines.append("Change which notifications you get by email in Settings → Notifications.")
    return "\n\n".join(lines)


def _slack_body(*, title: str, body: str, link: str, severity: str) -> str:
    icon = {"critical": ":rotating_light:", "warning": ":warning:"}.get(severity, ":bell:")
    text = f"{icon} *{title}* ({connection.tenant.name})"
    if body:
        text += f"\n{body}"
    if link:
        text += f"\n<{store_url(connection.tenant, link)}|Open in ShelfSense>"
    return json.dumps({"text": text}, separators=(",", ":"))


def notification_email_deliver(*, user_id: int, subject: str, message: str) -> bool:
    """Send one notification email through Django's email backend; False when the user no
    longer exists or is inactive. SMTP errors propagate for the task to retry."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    send_mail(subject, message, settings.DEFAULT_FROM_EMAIL, [user.email])
    return True


@transaction.atomic
def notification_mark_read(*, user: User, notification_ids: list[int] | None = None) -> int:
    """Mark the user's notifications read (all unread ones when `notification_ids` is None);
    returns how many changed. Ids of other users' notifications are ignored."""
    unread = Notification.objects.filter(user_id=user.pk, read=False)
    if notification_ids is not None:
        unread = unread.filter(pk__in=notification_ids)
    return unread.update(read=True, read_at=timezone.now())


@transaction.atomic
def notification_preferences_set(*, user: User, choices: dict[tuple[str, str], bool]) -> None:
    """Store the user's choice for each (kind, personal channel) given."""
    for (kind, channel), enabled in choices.items():
        kind_validate(kind)
        if channel not in Channel.PERSONAL:
            raise ApplicationError(f"Unknown channel: {channel}.", fields={"channel": ["unknown"]})
        NotificationPreference.objects.update_or_create(
            user_id=user.pk, kind=kind, channel=channel, defaults={"enabled": bool(enabled)}
        )
