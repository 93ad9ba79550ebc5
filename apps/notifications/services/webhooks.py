"""Store webhook endpoints (create, rotate the secret, delete; audited) and their deliveries: one
signed HTTP attempt at a time with retries backing off, and a manual resend. No transaction is held
open during an HTTP call."""

from __future__ import annotations

import ipaddress
import socket
import time
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.billing.entitlements import plan_feature_require
from apps.core.dispatch import dispatch_on_commit
from apps.core.errors import ApplicationError
from apps.core.platform_metrics import platform_event_count
from apps.notifications.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from apps.notifications.services.sending import kind_validate
from apps.notifications.signing import SIGNATURE_HEADER, signature_header, webhook_secret_generate
from apps.users.models import User

WEBHOOK_TIMEOUT_SECONDS = 5.0
RESPONSE_EXCERPT_CHARS = 300


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
    acting_user: User | None = None,
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
        kind_validate(kind)
    secret = webhook_secret_generate()
    endpoint = WebhookEndpoint.objects.create(
        url=url.strip(),
        kinds=sorted(set(kinds)),
        format=endpoint_format,
        description=description.strip()[:200],
        secret=secret,
        created_by_id=acting_user.pk if acting_user else None,
    )
    audit_record(
        action=AuditAction.WEBHOOK_CREATED,
        acting_user=acting_user,
        target_type="webhook_endpoint",
        target_id=str(endpoint.pk),
        details={"url": endpoint.url, "kinds": endpoint.kinds, "format": endpoint.format},
        request=request,
    )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_rotate_secret(
    *,
    endpoint: WebhookEndpoint,
    acting_user: User | None = None,
    request: HttpRequest | None = None,
) -> str:
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.secret = webhook_secret_generate()
    endpoint.save(update_fields=["secret"])
    audit_record(
        action=AuditAction.WEBHOOK_SECRET_ROTATED,
        acting_user=acting_user,
        target_type="webhook_endpoint",
        target_id=str(endpoint.pk),
        request=request,
    )
    return endpoint.secret


@transaction.atomic
def webhook_endpoint_delete(
    *,
    endpoint: WebhookEndpoint,
    acting_user: User | None = None,
    request: HttpRequest | None = None,
) -> None:
    audit_record(
        action=AuditAction.WEBHOOK_DELETED,
        acting_user=acting_user,
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
            platform_event_count("webhook_attempt_failed")
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
    *,
    delivery: WebhookDelivery,
    acting_user: User | None = None,
    request: HttpRequest | None = None,
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
        acting_user=acting_user,
        target_type="webhook_delivery",
        target_id=str(delivery.pk),
        request=request,
    )
    dispatch_on_commit(tasks.webhook_deliver, delivery_id=delivery.pk, manual=True)
    return delivery
