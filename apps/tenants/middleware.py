"""Host → tenant resolution for HTTP, and the suspended-store gate."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django_tenants.middleware.main import TenantMainMiddleware

from apps.core.errors import error_body
from apps.core.negotiation import wants_json
from apps.tenants.hosts import tenant_host_cached, tenant_host_remember
from apps.tenants.models import Tenant
from apps.tenants.selectors import hostname_normalize


class TenantMiddleware(TenantMainMiddleware):
    @staticmethod
    def hostname_from_request(request: HttpRequest) -> str:
        # get_host() refuses hosts outside ALLOWED_HOSTS (DisallowedHost: 404); the name is
        # then normalised as the websocket middleware does (uppercase, trailing dot).
        return hostname_normalize(request.get_host())

    def get_tenant(self, domain_model, hostname: str) -> Tenant:
        # The cached instance is shared by the requests of one host for the TTL: the only
        # attribute the middleware sets on it (domain_url) is that same hostname, and services
        # re-read the row before changing it. Copying it cost ~0.1 ms per request.
        cached = tenant_host_cached(hostname)
        if cached is not None:
            return cached
        tenant = super().get_tenant(domain_model, hostname)
        tenant_host_remember(hostname, tenant)
        return tenant

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        # django-tenants answers a host Django refuses (DisallowedHost: not in ALLOWED_HOSTS,
        # or malformed: "a_b.localhost", "x@y", "host:abc", empty) with an empty HTML 404;
        # API clients get the JSON body of an unknown host instead.
        if wants_json(request):
            try:
                request.get_host()
            except DisallowedHost:
                host = request.META.get("HTTP_HOST", "")
                message = f"No store is served at {host}." if host else "A Host header is required."
                return JsonResponse(error_body("store_not_found", message), status=404)
        return super().process_request(request)

    def no_tenant_found(self, request: HttpRequest, hostname: str) -> HttpResponse:
        if wants_json(request):
            return JsonResponse(
                error_body("store_not_found", f"No store is served at {hostname}."), status=404
            )
        return render(request, "tenants/not_found.html", {"hostname": hostname}, status=404)


class SuspendedTenantMiddleware:
    """A suspended store answers 403 on every URL: JSON for API clients, a page for people."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant = getattr(request, "tenant", None)
        if tenant is not None and not tenant.is_public and not tenant.is_active:
            message = f"The store {tenant.slug} is suspended."
            if wants_json(request):
                return JsonResponse(error_body("store_suspended", message), status=403)
            return render(request, "tenants/suspended.html", {"tenant": tenant}, status=403)
        return self.get_response(request)
