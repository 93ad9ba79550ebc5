"""Writes made from the dashboard that belong to no other app: the store's own settings."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.catalog.validation import EVENT_TYPES
from apps.core.errors import ApplicationError
from apps.tenants.hosts import forget_tenant_hosts
from apps.tenants.models import Tenant
from apps.tenants.services import store_name_clean
from apps.users.models import User


@transaction.atomic
def store_rename(
    *, tenant: Tenant, name: str, acting_user: User, request: HttpRequest | None = None
) -> Tenant:
    """Change the store's display name (the address never changes). Audited as
    `store.renamed` in the store's trail. Raises ApplicationError for a name
    `store_name_clean` refuses."""
    return _store_setting_change(
        tenant=tenant,
        field="name",
        value=store_name_clean(name),
        action=AuditAction.STORE_RENAMED,
        acting_user=acting_user,
        request=request,
    )


CURRENCY_CODE = re.compile(r"[A-Z]{3}")


@transaction.atomic
def store_currency_set(
    *, tenant: Tenant, currency: str, acting_user: User, request: HttpRequest | None = None
) -> Tenant:
    """Set the store's currency (ISO 4217 code; attributed revenue is reported in it). Input is
    trimmed and upper-cased. Audited as `store.currency_changed`. Raises ApplicationError 400
    naming `currency` unless it is three letters."""
    code = currency.strip().upper() if isinstance(currency, str) else ""
    if not CURRENCY_CODE.fullmatch(code):
        raise ApplicationError(
            "A three-letter ISO 4217 currency code is required (e.g. USD, EUR).",
            fields={"currency": ["three letters"]},
        )
    return _store_setting_change(
        tenant=tenant,
        field="currency",
        value=code,
        action=AuditAction.STORE_CURRENCY_CHANGED,
        acting_user=acting_user,
        request=request,
    )


@transaction.atomic
def store_seen_types_set(
    *,
    tenant: Tenant,
    event_types: list[str] | None,
    acting_user: User,
    request: HttpRequest | None = None,
) -> Tenant:
    """Choose which event types make an item "seen" (left out of the store's `exclude_seen`
    lists from the next request on); None restores the defaults (purchase, rating, dismiss;
    purchases not for repeat-buy models). Audited as `store.seen_types_changed`. Raises
    ApplicationError 400 naming `seen_event_types` for an unknown type."""
    chosen = None if event_types is None else sorted(set(event_types))
    unknown = sorted(set(chosen or ()) - EVENT_TYPES)
    if unknown:
        raise ApplicationError(
            f"Unknown event types: {', '.join(unknown)}.",
            fields={"seen_event_types": [f"one of {', '.join(sorted(EVENT_TYPES))}"]},
        )
    return _store_setting_change(
        tenant=tenant,
        field="seen_event_types",
        value=chosen,
        action=AuditAction.STORE_SEEN_TYPES_CHANGED,
        acting_user=acting_user,
        request=request,
    )


def _store_setting_change(
    *,
    tenant: Tenant,
    field: str,
    value: Any,
    action: AuditAction,
    acting_user: User,
    request: HttpRequest | None,
) -> Tenant:
    """Set one store field under a row lock, audited with its old and new value; every web
    process forgets its cached store once the transaction commits. Nothing happens (no audit)
    when the value is unchanged. Runs inside the caller's transaction."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    old = getattr(tenant, field)
    if old == value:
        return tenant
    setattr(tenant, field, value)
    tenant.save(update_fields=[field, "updated_at"])
    audit_record(
        action=action,
        acting_user=acting_user,
        target_type="store",
        target_id=tenant.slug,
        details={"from": old, "to": value},
        request=request,
    )
    transaction.on_commit(forget_tenant_hosts)
    return tenant
