from django.core.management.base import CommandError

from apps.tenants.models import Tenant


def tenant_for_slug(slug: str) -> Tenant:
    """The store with this slug; `public` names the operators' trail."""
    if slug == "public":
        tenant = Tenant.objects.filter(schema_name="public").first()
    else:
        tenant = Tenant.objects.filter(slug=slug).exclude(schema_name="public").first()
    if tenant is None:
        raise CommandError(f"No store with slug {slug!r}.")
    return tenant
