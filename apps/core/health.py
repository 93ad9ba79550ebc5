"""Readiness checks: each answers None when healthy or a short reason when not."""

from __future__ import annotations

from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from kombu import Connection

CHECK_TIMEOUT_SECONDS = 1.0


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def check_redis() -> str | None:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None


def check_broker() -> str | None:
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=CHECK_TIMEOUT_SECONDS) as conn:
            conn.ensure_connection(max_retries=0, timeout=CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


READINESS_CHECKS: dict[str, Callable[[], str | None]] = {
    "postgresql": check_database,
    "redis": check_redis,
    "celery_broker": check_broker,
}


def readiness_failures() -> dict[str, str]:
    """Run every check; the result names each failed dependency with its reason."""
    failures = {}
    for name, check in READINESS_CHECKS.items():
        reason = check()
        if reason is not None:
            failures[name] = reason
    return failures
