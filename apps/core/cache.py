"""Tenant-scoped keys for raw Redis access (counters, locks, precomputed lists).

Django's cache API already prefixes keys through `django_tenants.cache.make_key`; this module
is the one place that builds keys for the code that talks to Redis directly, with the same
schema prefix, so one store can never read another store's entries.
"""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings
from django.db import connection


def tenant_key(*parts: object, schema_name: str | None = None) -> str:
    """`<schema>:<prefix>:<part>:<part>...` for the current (or the given) tenant schema, the
    same leading `<schema>:<prefix>` that `django_tenants.cache.make_key` gives Django's cache."""
    schema = schema_name or connection.schema_name
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return ":".join([schema, prefix, *(str(part) for part in parts)])


@cache
def redis_client() -> redis.Redis:
    """A process-wide client on REDIS_URL with short timeouts, so a Redis outage degrades
    requests instead of hanging them."""
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        health_check_interval=30,
    )
