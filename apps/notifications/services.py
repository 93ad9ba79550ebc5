"""Writes of notifications: fan-out to members and channels, preferences, webhook endpoints and
their deliveries. Pushes, emails and webhook deliveries leave only after the transaction that
created them commits."""

from __future__ import annotations

import ipaddress
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.billing.entitlements import plan_feature_require
from apps.core.dispatch import dispatch_on_commit
from apps.core.errors import ApplicationError
from apps.core.live import store_push_on_commit
from apps.notifications import anomaly, selectors
from apps.notifications.kinds import KINDS, Channel
from apps.notifications.models import (
    Notification,
    NotificationPreference,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from apps.notifications.signing import SIGNATURE_HEADER, signature_header, webhook_secret_generate
from apps.tenants.selectors import store_url
from apps.users.models import User

WEBHOOK_TIMEOUT_SECONDS = 5.0
RESPONSE_EXCERPT_CHARS = 300


def _validate_kind(kind: str) -> None:
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

    _validate_kind(kind)
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
        _validate_kind(kind)
        if channel not in Channel.PERSONAL:
            raise ApplicationError(f"Unknown channel: {channel}.", fields={"channel": ["unknown"]})
        NotificationPreference.objects.update_or_create(
            user_id=user.pk, kind=kind, channel=channel, defaults={"enabled": bool(enabled)}
        )


# --- Webhooks -------------------------------------------------------------------------------


def _host_is_private(hostname: str) -> bool:
    """Whether any address of `hostname` is loopback, private, link-local or reserved (a
    webhook must not reach our own network)."""
    try:
        infos = socket.getaddrinfo(hostname, None)
    except OSError:
        return False
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_private or address.is_loopback or address.is_link_local:
            return True
        if address.is_reserved or address.is_multicast or address.is_unspecified:
            return True
    return False


def _validate_webhook_url(url: str) -> None:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApplicationError(
            "The webhook URL must be an http(s) address.", fields={"url": ["invalid"]}
        )
    if not settings.WEBHOOK_ALLOW_PRIVATE_HOSTS and _host_is_private(parts.hostname):
        raise ApplicationError(
            "The webhook URL points at a private or local address.",
            fields={"url": ["private_address"]},
        )


@transaction.atomic
def webhook_endpoint_create(
    *,
    url: str,
    kinds: list[str],
    endpoint_format: str = WebhookEndpoint.Format.SHELFSENSE,
    description: str = "",
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Add an outgoing webhook for `kinds`; returns (endpoint, signing secret). The secret is
    shown to the user once; rotate it with `webhook_endpoint_rotate_secret`. Audited. 403
    `plan_upgrade_required` on a plan without outgoing webhooks."""
    plan_feature_require(tenant=connection.tenant, feature="webhooks")
    _validate_webhook_url(url)
    if endpoint_format not in WebhookEndpoint.Format.values:
        raise ApplicationError("Unknown webhook format.", fields={"format": ["unknown"]})
    if not kinds:
        raise ApplicationError("Choose at least one kind.", fields={"kinds": ["required"]})
    for kind in kinds:
        _validate_kind(kind)
    secret = webhook_secret_generate()
    endpoint = WebhookEndpoint.objects.create(
        url=url.strip(),
        kinds=sorted(set(kinds)),
        format=endpoint_format,
        description=description.strip()[:200],
        secret=secret,
        created_by_id=actor.pk if actor else None,
    )
    audit_record(
        action=AuditAction.WEBHOOK_CREATED,
        actor_user=actor,
        target_type="webhook_endpoint",
        target_id=str(endpoint.pk),
        details={"url": endpoint.url, "kinds": endpoint.kinds, "format": endpoint.format},
        request=request,
    )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, actor: User | None = None, request: HttpRequest | None = None
) -> str:
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.secret = webhook_secret_generate()
    endpoint.save(update_fields=["secret"])
    audit_record(
        action=AuditAction.WEBHOOK_SECRET_ROTATED,
        actor_user=actor,
        target_type="webhook_endpoint",
        target_id=str(endpoint.pk),
        request=request,
    )
    return endpoint.secret


@transaction.atomic
def webhook_endpoint_delete(
    *, endpoint: WebhookEndpoint, actor: User | None = None, request: HttpRequest | None = None
) -> None:
    audit_record(
        action=AuditAction.WEBHOOK_DELETED,
        actor_user=actor,
        target_type="webhook_endpoint",
        target_id=str(endpoint.pk),
        details={"url": endpoint.url},
        request=request,
    )
    endpoint.delete()


def webhook_retry_delay(attempts: int) -> float | None:
    """Seconds to wait after the `attempts`-th failed attempt: WEBHOOK_BACKOFF_SECONDS doubled
    after each failure, or None once WEBHOOK_MAX_ATTEMPTS attempts have failed."""
    if attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        return None
    return settings.WEBHOOK_BACKOFF_SECONDS * 2 ** (attempts - 1)


def _post(url: str, body: str, headers: dict[str, str]) -> tuple[int | None, str]:
    request = urllib.request.Request(  # noqa: S310 (scheme checked: http/https only)
        url, data=body.encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{type(exc).__name__}: {reason}"[:RESPONSE_EXCERPT_CHARS]


def webhook_delivery_attempt(*, delivery_id: int, manual: bool = False) -> float | None:
    """Make one HTTP attempt of a delivery, log it, and update the delivery.

    Returns the seconds to wait before the next attempt, or None when the delivery is done
    (succeeded, failed for good, or no longer pending). No transaction is held open during the
    HTTP call.
    """
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None or delivery.status in (
        WebhookDelivery.Status.SUCCEEDED,
        WebhookDelivery.Status.FAILED,
    ):
        return None
    endpoint = delivery.endpoint
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "ShelfSense-Webhooks/1",
        "ShelfSense-Delivery": str(delivery.pk),
        "ShelfSense-Event": delivery.kind,
        SIGNATURE_HEADER: signature_header(
            secret=endpoint.secret, body=delivery.body, timestamp=timestamp
        ),
    }
    parts = urlsplit(endpoint.url)
    started = time.monotonic()
    if not settings.WEBHOOK_ALLOW_PRIVATE_HOSTS and _host_is_private(parts.hostname or ""):
        status_code, error = None, "refused: the URL resolves to a private or local address"
    else:
        status_code, error = _post(endpoint.url, delivery.body, headers)
    elapsed_ms = int((time.monotonic() - started) * 1000)
    succeeded = status_code is not None and 200 <= status_code < 300

    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        delivery.attempts += 1
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            status_code=status_code,
            response_ms=elapsed_ms,
            error=error,
            manual=manual,
        )
        delivery.last_status_code = status_code
        delay = None
        if succeeded:
            delivery.status = WebhookDelivery.Status.SUCCEEDED
            delivery.delivered_at = timezone.now()
            delivery.next_attempt_at = None
        else:
            delay = webhook_retry_delay(delivery.attempts)
            if delay is None or manual:
                delivery.status = WebhookDelivery.Status.FAILED
                delivery.next_attempt_at = None
                delay = None
            else:
                delivery.status = WebhookDelivery.Status.RETRYING
                delivery.next_attempt_at = timezone.now() + timedelta(seconds=delay)
        delivery.save(
            update_fields=[
                "attempts",
                "last_status_code",
                "status",
                "delivered_at",
                "next_attempt_at",
            ]
        )
    return delay


@transaction.atomic
def webhook_delivery_resend(
    *, delivery: WebhookDelivery, actor: User | None = None, request: HttpRequest | None = None
) -> WebhookDelivery:
    """Send a delivery again, once, with a fresh signature (a manual attempt is not retried).
    Audited; the attempt is dispatched on commit."""
    from apps.notifications import tasks

    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.status in (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING):
        raise ApplicationError(
            "This delivery is still being attempted.", code="conflict", status_code=409
        )
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.save(update_fields=["status"])
    audit_record(
        action=AuditAction.WEBHOOK_RESENT,
        actor_user=actor,
        target_type="webhook_delivery",
        target_id=str(delivery.pk),
        request=request,
    )
    dispatch_on_commit(tasks.webhook_deliver, delivery_id=delivery.pk, manual=True)
    return delivery


# --- Usage anomalies ------------------------------------------------------------------------


ANOMALY_TITLES = {
    "spike": "API traffic spike",
    "drop": "API traffic dropped",
    "auth_failures": "Burst of API authentication failures",
    "client_errors": "High API error rate",
}


def usage_anomaly_check(*, now: datetime | None = None) -> list[anomaly.Flag]:
    """Evaluate the last complete minute of the connection's store against its baseline
    (apps.notifications.anomaly). Each new flag (outside its rule's cooldown) writes an audit
    event `usage.anomaly_flagged` and notifies the members (kind usage.anomaly) in one
    transaction. Returns the flags raised."""
    minute = anomaly.minute_of(now or timezone.now()) - 1
    window, since = anomaly.usage_window(end_minute=minute, minutes=anomaly.BASELINE_MINUTES + 1)
    if since is None:
        return []
    *history, current = window
    first = max(0, len(history) - (minute - since))
    raised = []
    for flag in anomaly.detect(history[first:], current, minute):
        if not anomaly.cooldown_claim(flag.rule):
            continue
        _usage_anomaly_raise(flag)
        raised.append(flag)
    return raised


@transaction.atomic
def _usage_anomaly_raise(flag: anomaly.Flag) -> None:
    at = datetime.fromtimestamp(flag.minute * 60, tz=UTC)
    details = {
        "rule": flag.rule,
        "minute": at.isoformat(),
        "observed": round(flag.observed, 4),
        "baseline": round(flag.baseline, 4),
    }
    audit_record(
        action=AuditAction.USAGE_ANOMALY_FLAGGED,
        actor_label="anomaly detector",
        target_type="api_usage",
        target_id=flag.rule,
        details=details,
    )
    notification_send(
        kind="usage.anomaly",
        title=ANOMALY_TITLES[flag.rule],
        body=flag.message,
        link="/",
        data=details,
    )
