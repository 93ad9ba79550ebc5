"""Reads of tenants and their domains."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.http.request import split_domain_port, validate_host
from django_tenants.utils import remove_www

from apps.tenants.models import Domain, Tenant


def store_domain(slug: str) -> str:
    return f"{slug}.{settings.BASE_DOMAIN}"


def store_url(tenant: Tenant, path: str = "/") -> str:
    """The browser URL of a store (or of the operators' site for the public tenant)."""
    host = settings.BASE_DOMAIN if tenant.is_public else store_domain(tenant.slug)
    port = f":{settings.PUBLIC_PORT}" if settings.PUBLIC_PORT else ""
    return f"{settings.PUBLIC_SCHEME}://{host}{port}{path}"


def public_url(path: str = "/") -> str:
    port = f":{settings.PUBLIC_PORT}" if settings.PUBLIC_PORT else ""
    return f"{settings.PUBLIC_SCHEME}://{settings.BASE_DOMAIN}{port}{path}"


def store_list() -> QuerySet[Tenant]:
    return Tenant.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).order_by("slug")


def hostname_normalize(host: str) -> str:
    """The name a store is looked up by, for HTTP and websockets alike: port dropped,
    lowercased, one trailing dot removed (Django's split_domain_port), a leading "www."
    removed (django-tenants' rule). Empty for a malformed host or one outside ALLOWED_HOSTS,
    which serves no store."""
    hostname, _port = split_domain_port(host)
    if not hostname or not validate_host(hostname, settings.ALLOWED_HOSTS):
        return ""
    return remove_www(hostname)


def tenant_for_host(host: str) -> Tenant | None:
    """The tenant serving `host` (a Host header), or None for an unknown host."""
    hostname = hostname_normalize(host)
    if not hostname:
        return None
    domain = Domain.objects.select_related("tenant").filter(domain=hostname).first()
    return domain.tenant if domain else None
