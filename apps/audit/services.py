"""Writes to the audit trail. Every state-changing service calls `audit_record` inside its own
transaction, so the change and its audit row commit or roll back together."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from typing import IO, Any

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.actions import AuditAction
from apps.audit.chain import CHAINED_FIELDS, GENESIS_HASH, canonical_details, chain_hash
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_event_list

# First key of the two-key advisory lock that serialises chain appends; the second key is a
# hash of the schema name, so each schema's chain is serialised on its own.
_CHAIN_LOCK_CLASS = 0x55A0

# The export carries every chained field, so a reader can re-check each row's hash.
CSV_COLUMNS = ("id", *CHAINED_FIELDS, "prev_hash", "hash")


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address: REMOTE_ADDR, or the first address of the header named by
    TRUSTED_CLIENT_IP_HEADER when the platform runs behind a proxy that sets it."""
    if request is None:
        return None
    header = getattr(settings, "TRUSTED_CLIENT_IP_HEADER", "")
    raw = ""
    if header:
        raw = request.headers.get(header, "").split(",")[0].strip()
    raw = raw or request.META.get("REMOTE_ADDR", "")
    return raw or None


def request_id_of(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    value = getattr(request, "request_id", "") or request.headers.get("X-Request-ID", "")
    return str(value)[:64]


def _actor(acting_user, actor_api_key, actor_label: str, request) -> tuple[str, Any, Any, str]:
    if acting_user is None and actor_api_key is None and request is not None:
        # The request's own principal, when the caller did not name one.
        auth = getattr(request, "auth", None)
        if auth is not None and hasattr(auth, "prefix") and hasattr(auth, "scopes"):
            actor_api_key = auth
        else:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                acting_user = user
    if acting_user is not None:
        return AuditEvent.ActorType.USER, acting_user.pk, None, actor_label or acting_user.email
    if actor_api_key is not None:
        label = actor_label or f"api_key:{actor_api_key.prefix} ({actor_api_key.name})"
        return AuditEvent.ActorType.API_KEY, None, actor_api_key.pk, label
    return AuditEvent.ActorType.SYSTEM, None, None, actor_label or "system"


@transaction.atomic
def audit_record(
    *,
    action: AuditAction,
    acting_user=None,
    actor_api_key=None,
    actor_label: str = "",
    target_type: str = "",
    target_id: str = "",
    details: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    """Append one event to the CURRENT schema's trail (a store schema: the store's trail; the
    public schema: the operators' trail) and chain it to the previous row.

    `action` must be an AuditAction member (ValueError otherwise). The actor is `acting_user`,
    else `actor_api_key`, else the request's user or API key, else
    "system". `details` must never hold secrets; it is stored as plain JSON. Appends are
    serialised per schema by a transaction-scoped advisory lock held until the caller's
    transaction ends, which keeps the chain linear.
    """
    if not isinstance(action, AuditAction):
        raise ValueError(f"Audit actions are AuditAction members, not {action!r}.")
    actor_type, user_id, key_id, label = _actor(acting_user, actor_api_key, actor_label, request)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", [_CHAIN_LOCK_CLASS]
        )
    previous = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    event = AuditEvent(
        occurred_at=timezone.now(),
        action=action.value,
        actor_type=actor_type,
        actor_user_id=user_id,
        actor_api_key_id=key_id,
        actor_label=label[:255],
        target_type=target_type[:64],
        target_id=str(target_id)[:128],
        details=canonical_details(details),
        ip=client_ip(request),
        user_agent=(request.headers.get("User-Agent", "") if request is not None else "")[:512],
        request_id=request_id_of(request),
        prev_hash=previous or GENESIS_HASH,
    )
    event.hash = chain_hash(event.prev_hash, event)
    event.save(force_insert=True)
    return event


@transaction.atomic
def audit_export_csv(
    *,
    out: IO[str],
    since: datetime | None = None,
    until: datetime | None = None,
    acting_user=None,
    actor_label: str = "",
    request: HttpRequest | None = None,
) -> int:
    """Write the current schema's events (oldest first, optionally within [since, until)) to
    `out` as CSV with a header row; returns the number of events written. The export itself
    is audited as `audit.exported`."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for event in audit_event_list(since=since, until=until).order_by("id").iterator(2000):
        row = []
        for column in CSV_COLUMNS:
            value = getattr(event, column)
            if column == "occurred_at":
                value = value.isoformat()
            elif column == "details":
                value = _json(value)
            row.append("" if value is None else _spreadsheet_safe(value))
        writer.writerow(row)
        count += 1
    audit_record(
        action=AuditAction.AUDIT_EXPORTED,
        acting_user=acting_user,
        actor_label=actor_label,
        target_type="audit",
        details={
            "events": count,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        },
        request=request,
    )
    return count


# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): ids, key names and
# emails come from API clients and sign-ups, and the file is opened by the store's staff.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _spreadsheet_safe(value: Any) -> Any:
    """`value`, with a text that starts like a formula prefixed by `'` (the spreadsheet's
    "this is text" mark; strip it to recompute an event's hash from the file)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
