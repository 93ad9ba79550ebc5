"""Tenancy for websockets. django-tenants resolves the tenant for HTTP only (its issues #767,
#1143: consumers otherwise query the public schema), so this middleware does the same from the
Host header, and the consumer base class runs every database call inside that tenant's schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import connection
from django_tenants.utils import tenant_context

from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_for_host

CLOSE_STORE_NOT_FOUND = 4404
CLOSE_FORBIDDEN = 4403


def _host_from_scope(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", []):
        if name == b"host":
            return value.decode("latin-1")
    return ""


@database_sync_to_async
def _resolve_tenant(host: str) -> Tenant | None:
    connection.set_schema_to_public()
    return tenant_for_host(host)


class TenantWebsocketMiddleware:
    """Puts the host's tenant in `scope["tenant"]`; unknown or suspended stores are refused
    before the handshake completes."""

    def __init__(self, inner: Callable) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.inner(scope, receive, send)
        tenant = await _resolve_tenant(_host_from_scope(scope))
        if tenant is None or not tenant.is_active:
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
