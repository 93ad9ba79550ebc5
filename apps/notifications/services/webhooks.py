"""Store webhook endpoints (create, rotate the secret, delete; audited) and their deliveries: one
signed HTTP attempt at a time with retries backing off, and a manual resend. No transaction is held
open during an HTTP call."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
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


def _address_is_internal(address: str) -> bool:
    """Whether `address` (an IP string from getaddrinfo) is loopback, private, link-local,
    reserved, multicast or unspecified (a webhook must not reach our own network)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_private or ip.is_loopback or ip.is_link_local:
        return True
    return ip.is_reserved or ip.is_multicast or ip.is_unspecified


def _host_is_private(hostname: str) -> bool:
    """Whether any address of `hostname` is internal (see `_address_is_internal`). A host that
    does not resolve passes here; delivery resolves it again and refuses it then."""
    try:
        infos = socket.getaddrinfo(hostname, None)
    except OSError:
        return False
    return any(_address_is_internal(info[4][0]) for info in infos)


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


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to `host` (used for the Host header) over a socket to the already checked
    `address`: no second DNS lookup between the check and the connection."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the checked `address`; SNI and certificate verification use `host`."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def _resolve_checked(hostname: str, port: int) -> tuple[str | None, str]:
    """Resolve `hostname` once: (address to connect to, "") or (None, why it is refused). Every
    address must be public unless WEBHOOK_ALLOW_PRIVATE_HOSTS (tests, local development)."""
    try:
        infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return None, f"refused: the host could not be resolved ({type(exc).__name__}: {exc})"
    addresses = [info[4][0] for info in infos]
    if not addresses:
        return None, "refused: the host could not be resolved"
    if not settings.WEBHOOK_ALLOW_PRIVATE_HOSTS and any(map(_address_is_internal, addresses)):
        return None, "refused: the URL resolves to a private or local address"
    return addresses[0], ""


def _post(url: str, body: str, headers: dict[str, str]) -> tuple[int | None, str]:
    """One POST to `url`, connected to the address checked here (never re-resolved) and never
    following a redirect: (status code or None, error to record or "")."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None, "refused: the URL has an invalid port"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None, "refused: the webhook URL must be an http(s) address"
    address, error = _resolve_checked(parts.hostname, port)
    if address is None:
        return None, error[:RESPONSE_EXCERPT_CHARS]
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    conn = connection_class(parts.hostname, port, address=address, timeout=WEBHOOK_TIMEOUT_SECONDS)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    try:
        conn.request("POST", path, body=body.encode(), headers={**headers, "Connection": "close"})
        response = conn.getresponse()
        status = response.status
        location = response.getheader("Location", "")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:RESPONSE_EXCERPT_CHARS]
    finally:
        conn.close()
    if 300 <= status < 400:
        error = f"refused: redirects are not followed ({status} to {location or 'nowhere'})"
        return status, error[:RESPONSE_EXCERPT_CHARS]
    return status, ""


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
    started = time.monotonic()
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
