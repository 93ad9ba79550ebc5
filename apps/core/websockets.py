"""Tenancy for websockets. django-tenants resolves the tenant for HTTP only (its issues #767,
#1143: consumers otherwise query the public schema), so this middleware does the same from the
Host header, and the consumer base class runs every database call inside that tenant's schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import connection
from django_tenants.utils import tenant_context

from apps.tenants.models import Tenant
from apps.tenants.selectors import hostname_normalize, tenant_for_host

CLOSE_STORE_NOT_FOUND = 4404
CLOSE_FORBIDDEN = 4403


def _header(scope: dict[str, Any], header: bytes) -> str:
    for name, value in scope.get("headers", []):
        if name == header:
            return value.decode("latin-1")
    return ""


def _host_from_scope(scope: dict[str, Any]) -> str:
    return _header(scope, b"host")


def origin_matches_host(origin: str, host: str) -> bool:
    """A store's socket is opened only by that store's own pages: the Origin's host must be
    the Host's (normalised alike). AllowedHostsOriginValidator alone lets any store's page,
    all of them under ALLOWED_HOSTS, open another store's socket."""
    parsed = urlsplit(origin)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return False
    origin_host = hostname_normalize(parsed.netloc)
    return bool(origin_host) and origin_host == hostname_normalize(host)


@database_sync_to_async
def _resolve_tenant(host: str) -> Tenant | None:
    connection.set_schema_to_public()
    return tenant_for_host(host)


class TenantWebsocketMiddleware:
    """Puts the host's tenant in `scope["tenant"]`; unknown or suspended stores, and pages of
    another origin than the store's own host, are refused before the handshake completes."""

    def __init__(self, inner: Callable) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.inner(scope, receive, send)
        host = _host_from_scope(scope)
        tenant = await _resolve_tenant(host)
        foreign = not origin_matches_host(_header(scope, b"origin"), host)
        if tenant is None or not tenant.is_active or foreign:
            # Accept, then close: a close before the handshake reaches the client without its code.
            await receive()  # the websocket.connect message
            code = CLOSE_STORE_NOT_FOUND if tenant is None else CLOSE_FORBIDDEN
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": code})
            return None
        return await self.inner(dict(scope, tenant=tenant), receive, send)


class TenantConsumer(AsyncJsonWebsocketConsumer):
    """Base for store consumers: `await self.in_tenant(fn, ...)` runs `fn` in a database thread
    with the connection set to this socket's store schema."""

    @property
    def tenant(self) -> Tenant:
        return self.scope["tenant"]

    async def in_tenant(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        tenant = self.tenant

        def run() -> Any:
            with tenant_context(tenant):
                return func(*args, **kwargs)

        return await database_sync_to_async(run)()
