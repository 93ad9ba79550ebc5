"""Writes on tenants: provisioning, suspension, the template schema new stores are cloned from."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django_tenants.utils import schema_context, schema_exists, tenant_context

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.core.errors import ApplicationError
from apps.core.live import store_access_revoke_on_commit
from apps.tenants.hosts import forget_tenant_hosts
from apps.tenants.models import SLUG_VALIDATOR, Domain, Tenant
from apps.tenants.schema_recipe import current_recipe, recipe_record, recipe_replay
from apps.tenants.selectors import store_domain
from apps.tenants.signals import store_ready
from apps.users.models import Membership, User

logger = logging.getLogger(__name__)

RESERVED_SLUGS = frozenset({"www", "admin", "api", "app", "public", "static", "media", "mail"})


def schema_name_for(slug: str) -> str:
    return "store_" + slug.replace("-", "_")


def tenant_template_migrate(*, verbosity: int = 0) -> None:
    """Make sure the store template and its SQL recipe match the current store migrations.

    Run after every `migrate_schemas --shared` (setup_platform does): when a store migration
    was added, the template is rebuilt from nothing and its recipe recorded again.
    """
    if schema_exists(settings.STORE_TEMPLATE_SCHEMA) and current_recipe() is not None:
        return
    recipe_record(schema_name=settings.STORE_TEMPLATE_SCHEMA, verbosity=verbosity)


def public_tenant_ensure() -> Tenant:
    """The operators' site: the public schema, served on BASE_DOMAIN."""
    tenant, _ = Tenant.objects.get_or_create(
        schema_name=settings.PUBLIC_SCHEMA_NAME,
        defaults={"slug": "public", "name": "ShelfSense"},
    )
    Domain.objects.get_or_create(
        domain=settings.BASE_DOMAIN, defaults={"tenant": tenant, "is_primary": True}
    )
    return tenant


def slug_validate(slug: str) -> None:
    """A new store's address (already lowercased): the slug pattern, not reserved, not an
    internationalised-name label (`xn--…`, or any `??--` prefix DNS reserves for them: a
    browser shows `xn--dmo-8ka` as a look-alike "démo"), not taken. Raises ApplicationError
    naming `slug` (409 when taken)."""
    try:
        SLUG_VALIDATOR(slug)
    except ValidationError as exc:
        raise ApplicationError(exc.messages[0], fields={"slug": exc.messages}) from exc
    if slug in RESERVED_SLUGS or slug[2:4] == "--":
        raise ApplicationError("This store address is reserved.", fields={"slug": ["reserved"]})
    if Tenant.objects.filter(slug=slug).exists():
        raise ApplicationError(
            "A store with this address already exists.",
            code="conflict",
            status_code=409,
            fields={"slug": ["taken"]},
        )


STORE_NAME_MAX = 120  # Tenant.name


def store_name_clean(name: str) -> str:
    """A store's display name, stripped: required, at most STORE_NAME_MAX characters, no
    control characters or line breaks (it is shown in pages, emails and CSV files). Raises
    ApplicationError naming `name`."""
    name = name.strip()
    if not name:
        raise ApplicationError("A store name is required.", fields={"name": ["required"]})
    if len(name) > STORE_NAME_MAX:
        raise ApplicationError(
            f"At most {STORE_NAME_MAX} characters.", fields={"name": ["too_long"]}
        )
    if not name.isprintable():
        raise ApplicationError(
            "A store name must not contain control characters or line breaks.",
            fields={"name": ["not_printable"]},
        )
    return name


@transaction.atomic
def tenant_create(
    *,
    slug: str,
    name: str,
    owner: User | None = None,
    acting_user: User | None = None,
    request: HttpRequest | None = None,
) -> Tenant:
    """Provision a store: tenant row, schema built by replaying the template's recipe, domain
    `<slug>.<BASE_DOMAIN>`, and the owner's membership, all in one transaction. Audited as
    `tenant.created` in the operators' (public) trail; the actor is `acting_user`, else the owner.
    After commit, the store's nightly training schedule is created (`store_schedules_ensure`).

    Raises ApplicationError (400 invalid slug or name, 409 taken). PostgreSQL DDL is transactional,
    so a failure leaves no schema behind.
    """
    slug = slug.strip().lower()
    name = store_name_clean(name)
    slug_validate(slug)
    recipe = current_recipe()
    if recipe is None:
        raise ApplicationError(
            "The store template is not ready: run `manage.py setup_platform`.",
            code="not_ready",
            status_code=503,
        )

    tenant = Tenant.objects.create(schema_name=schema_name_for(slug), slug=slug, name=name)
    recipe_replay(recipe=recipe, schema_name=tenant.schema_name)
    Domain.objects.create(domain=store_domain(slug), tenant=tenant, is_primary=True)
    if owner is not None:
        Membership.objects.create(user=owner, tenant=tenant, role=Membership.Role.OWNER)
    _operator_audit(
        AuditAction.TENANT_CREATED,
        tenant,
        acting_user=acting_user or owner,
        request=request,
        details={"slug": slug, "name": name, "owner": owner.email if owner else None},
    )
    logger.info("tenant created", extra={"tenant": slug})
    # After commit: the schedule lives in the new schema, which only exists once committed.
    # Robust: a failure is logged and leaves the store usable; setup_platform ensures it again.
    transaction.on_commit(lambda: store_schedules_ensure(tenant=tenant), robust=True)
    return tenant


def store_schedules_ensure(*, tenant: Tenant) -> None:
    """Announce `store_ready` inside the store's schema: the apps that keep per-store rows
    create theirs if missing (the nightly training, spread over the night by
    the recommendations app). Idempotent; an existing entry keeps its time and enabled flag."""
    if tenant.is_public:
        raise ApplicationError("The operators' site has no store schedules.")
    with tenant_context(tenant):
        store_ready.send(sender=Tenant, tenant=tenant)


def stores_schedules_ensure() -> int:
    """`store_schedules_ensure` for every store (setup_platform); returns how many stores."""
    stores = Tenant.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).order_by("pk")
    count = 0
    for tenant in stores:
        store_schedules_ensure(tenant=tenant)
        count += 1
    return count


@transaction.atomic
def tenant_suspend(
    *,
    tenant: Tenant,
    reason: str = "",
    acting_user: User | None = None,
    request: HttpRequest | None = None,
) -> Tenant:
    """Suspend a store: every URL of it answers 403 until reactivated, and its open dashboard
    sockets are closed (4403) on commit. Audited as `tenant.suspended` in the operators' trail."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.is_public:
        raise ApplicationError("The operators' site cannot be suspended.")
    before = tenant.status
    tenant.status = Tenant.Status.SUSPENDED
    tenant.suspended_reason = reason[:255]
    tenant.save(update_fields=["status", "suspended_reason", "updated_at"])
    _operator_audit(
        AuditAction.TENANT_SUSPENDED,
        tenant,
        acting_user=acting_user,
        request=request,
        details={
            "before": {"status": before},
            "after": {"status": tenant.status},
            "reason": tenant.suspended_reason,
        },
    )
    _forget_tenant_hosts_now_and_on_commit()
    store_access_revoke_on_commit(schema_name=tenant.schema_name)
    return tenant


def _operator_audit(
    action: AuditAction,
    tenant: Tenant,
    *,
    acting_user: User | None,
    request: HttpRequest | None,
    details: dict,
) -> None:
    # Operator actions go to the public schema's trail, whatever schema the caller is in.
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        audit_record(
            action=action,
            acting_user=acting_user,
            target_type="tenant",
            target_id=tenant.slug,
            details=details,
            request=request,
        )


def _forget_tenant_hosts_now_and_on_commit() -> None:
    # Now, so this process stops serving the old status at once; again on commit, in case a
    # request re-cached the old row while the transaction was open.
    forget_tenant_hosts()
    transaction.on_commit(forget_tenant_hosts)


@transaction.atomic
def tenant_reactivate(
    *, tenant: Tenant, acting_user: User | None = None, request: HttpRequest | None = None
) -> Tenant:
    """Reactivate a suspended store. Audited as `tenant.reactivated` in the operators' trail."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    before = tenant.status
    tenant.status = Tenant.Status.ACTIVE
    tenant.suspended_reason = ""
    tenant.save(update_fields=["status", "suspended_reason", "updated_at"])
    _operator_audit(
        AuditAction.TENANT_REACTIVATED,
        tenant,
        acting_user=acting_user,
        request=request,
        details={"before": {"status": before}, "after": {"status": tenant.status}},
    )
    _forget_tenant_hosts_now_and_on_commit()
    return tenant
