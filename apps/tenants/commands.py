"""The `--tenant` argument of management commands: one lookup, one error for an unknown store."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError

from apps.tenants.models import Tenant


def store_for_slug(slug: str, *, allow_public: bool = False) -> Tenant:
    """The store whose slug is `slug`.

    With `allow_public`, the slug `public` names the operators' (public schema) tenant.
    Raises CommandError("No store with slug 'x'.") when there is none.
    """
    if allow_public and slug == settings.PUBLIC_SCHEMA_NAME:
        tenant = Tenant.objects.filter(schema_name=settings.PUBLIC_SCHEMA_NAME).first()
    else:
        tenant = (
            Tenant.objects.filter(slug=slug)
            .exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
            .first()
        )
    if tenant is None:
        raise CommandError(f"No store with slug {slug!r}.")
    return tenant
