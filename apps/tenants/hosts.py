"""The process-local cache of host → store that the HTTP middleware reads on every request.

Every request needs its tenant; a short cache saves a query per request. Services that change
a store's status or domains call `forget_tenant_hosts` (now and on commit), and other processes
see the change within TENANT_CACHE_TTL_SECONDS.
"""

from __future__ import annotations

import threading
import time

from apps.tenants.models import Tenant

TENANT_CACHE_TTL_SECONDS = 5.0
_tenant_cache: dict[str, tuple[float, Tenant]] = {}
_tenant_cache_lock = threading.Lock()


def forget_tenant_hosts() -> None:
    with _tenant_cache_lock:
        _tenant_cache.clear()


def tenant_host_cached(hostname: str) -> Tenant | None:
    """The store cached for `hostname`, or None when absent or expired."""
    cached = _tenant_cache.get(hostname)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    return None


def tenant_host_remember(hostname: str, tenant: Tenant) -> None:
    with _tenant_cache_lock:
        _tenant_cache[hostname] = (time.monotonic() + TENANT_CACHE_TTL_SECONDS, tenant)
