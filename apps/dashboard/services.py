"""Writes made from the dashboard that belong to no other app: the store's own settings."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest

from apps.audit.services import audit_record
from apps.core.errors import ApplicationError
from apps.tenants.middleware import forget_tenant_hosts
from apps.tenants.models import Tenant
from apps.users.models import User

STORE_NAME_MAX = 120


@transaction.atomic
def store_rename(
    *, tenant: Tenant, name: str, actor: User, request: HttpRequest | None = None
) -> Tenant:
    """Change the store's display name (the address never changes). Audited as
    `store.renamed` in the store's trail. Raises ApplicationError for an empty or long name."""
    name = name.strip()
    if not name:
        raise ApplicationError("A store name is required.", fields={"name": ["required"]})
    if len(name) > STORE_NAME_MAX:
        raise ApplicationError(
            f"At most {STORE_NAME_MAX} characters.", fields={"name": ["too_long"]}
        )
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    old = tenant.name
    if old == name:
        return tenant
    tenant.name = name
    tenant.save(update_fields=["name", "updated_at"])
    audit_record(
        action="store.renamed",
        actor_user=actor,
        target_type="store",
        target_id=tenant.slug,
        details={"from": old, "to": name},
        request=request,
    )
    transaction.on_commit(forget_tenant_hosts)
    return tenant
