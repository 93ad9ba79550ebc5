"""The month's usage as PostgreSQL knows it, for quotas when Redis is down or has lost counts
(apps.billing.quotas): per-hour fallback counts (`UsageFallback`) written during an outage,
the month rebuilt from rolled-up hours plus Redis' hour counters, and the per-process memory of
months known to have no fallback counts (trusted for FALLBACK_RECHECK_SECONDS)."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from apps.billing import keys
from apps.billing.models import UsageFallback, UsageRecord
from apps.core.cache import redis_client
from apps.tenants.models import Tenant

# How long a process trusts the month's fallback counts it read (apps.billing.quotas' docstring).
FALLBACK_RECHECK_SECONDS = 10.0

# (tenant id, metric, month label) -> until when (monotonic) the month is known to have no
# fallback counts
_fallback_none: dict[tuple[int, str, str], float] = {}
_fallback_lock = threading.Lock()


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def fallback_by_hour(tenant: Tenant, metric: str, now: datetime) -> dict[datetime, int]:
    rows = UsageFallback.objects.filter(
        tenant_id=tenant.id, metric=metric, hour__gte=month_start(now)
    ).values_list("hour", "quantity")
    return dict(rows)


def fallback_committed(tenant: Tenant, metric: str, now: datetime) -> dict[datetime, int]:
    """The month's fallback counts from PostgreSQL; a month without any is remembered for
    `fallback_recent` (counts are never remembered: a stale count could be folded in twice).
    Only with Redis up: then the caller's transaction counts nothing in PostgreSQL, so what
    it reads is committed."""
    counts = fallback_by_hour(tenant, metric, now)
    if not any(counts.values()):
        with _fallback_lock:
            _fallback_none[(tenant.id, metric, keys.month_label(now))] = (
                time.monotonic() + FALLBACK_RECHECK_SECONDS
            )
    return counts


def fallback_recent(tenant: Tenant, metric: str, now: datetime) -> dict[datetime, int]:
    """The month's fallback counts: none when this process found none within
    FALLBACK_RECHECK_SECONDS, else from PostgreSQL."""
    expires = _fallback_none.get((tenant.id, metric, keys.month_label(now)))
    if expires is not None and expires > time.monotonic():
        return {}
    return fallback_committed(tenant, metric, now)


def fallback_forget(tenant: Tenant, metric: str, now: datetime) -> None:
    with _fallback_lock:
        _fallback_none.pop((tenant.id, metric, keys.month_label(now)), None)


def month_seed(tenant: Tenant, metric: str, now: datetime, fallback: dict[datetime, int]) -> int:
    """The month's usage rebuilt from PostgreSQL (rolled-up hours) and whatever hour counters
    Redis still has: per hour, the larger of the rolled-up row and counter + fallback."""
    start = month_start(now)
    hours = [start + timedelta(hours=n) for n in range(int((now - start) / timedelta(hours=1)) + 1)]
    rolled = dict(
        UsageRecord.objects.filter(tenant_id=tenant.id, metric=metric, hour__gte=start).values_list(
            "hour", "quantity"
        )
    )
    hour_keys = [keys.usage_hour_key(tenant.schema_name, metric, hour) for hour in hours]
    counters = redis_client().mget(hour_keys)
    return sum(
        max(rolled.get(hour, 0), int(counter or 0) + fallback.get(hour, 0))
        for hour, counter in zip(hours, counters, strict=True)
    )


def fallback_add(tenant: Tenant, metric: str, now: datetime, amount: int) -> None:
    """Add `amount` to the store's PostgreSQL usage of this hour (row-locked until commit)."""
    # This process reads the counts again at its next reservation, and after the commit (a
    # reservation of another thread may have read them in between).
    fallback_forget(tenant, metric, now)
    transaction.on_commit(lambda: fallback_forget(tenant, metric, now), robust=True)
    table = f"{connection.ops.quote_name(settings.PUBLIC_SCHEMA_NAME)}.billing_usagefallback"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} "
            "(tenant_id, metric, hour, quantity, updated_at) VALUES (%s, %s, %s, %s, now()) "
            "ON CONFLICT (tenant_id, metric, hour) DO UPDATE "
            "SET quantity = billing_usagefallback.quantity + EXCLUDED.quantity, "
            "updated_at = now()",
            [tenant.id, metric, now.replace(minute=0, second=0, microsecond=0), amount],
        )
