"""Usage counting and quota checks on the request path: Redis only, one round trip each.

Other apps call exactly two functions:
- `quota_check_ingest(tenant=, amount=)` once per ingest batch, before anything is stored;
- `usage_record(tenant=, metric=, amount=)` after the usage happened (events stored,
  recommendations served).

Quotas are per calendar month (UTC). The check and the increment are separate steps, so two
batches racing at the very edge of the quota can both pass: the quota is enforced per batch,
not per event, which is the accepted slack for not serialising ingestion.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import redis
from django.db import transaction
from django.utils import timezone

from apps.billing import keys
from apps.billing.models import Metric
from apps.billing.selectors import billing_state
from apps.core.cache import redis_client
from apps.core.errors import ApplicationError
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

# Percentages of a monthly quota at which the owner is told, once per month each.
NOTIFY_THRESHOLDS = (80, 100)


def _seconds_to_next_month(now: datetime) -> int:
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    next_month = (first + timedelta(days=32)).replace(day=1)
    return max(1, int((next_month - now).total_seconds()))


def quota_check_ingest(*, tenant: Tenant, amount: int, now: datetime | None = None) -> None:
    """Refuse an ingest batch of `amount` events before anything is stored.

    Raises ApplicationError:
    - 402 `payment_overdue` when the dunning grace period has passed without a paid invoice
      (the store is read-only for ingestion until `invoice.paid`);
    - 429 `quota_exceeded` (with Retry-After until the next month) when the plan blocks
      overage and this batch would take the month's events past the quota.
    Plans that bill overage always pass. One Redis round trip (cached state + counter); with
    Redis unreachable the check fails open (logged): billing never takes ingestion down.
    """
    now = now or timezone.now()
    try:
        pipe = redis_client().pipeline(transaction=False)
        pipe.get(keys.billing_state_key(tenant.schema_name))
        pipe.get(keys.usage_month_key(tenant.schema_name, Metric.EVENTS_INGESTED, now))
        cached_state, used_raw = pipe.execute()
        state = billing_state(tenant, cached=cached_state)
    except redis.RedisError:
        logger.warning("quota check skipped: Redis unavailable", exc_info=True)
        return
    if state.read_only(now):
        raise ApplicationError(
            "Ingestion is paused: the last payment failed and the grace period has ended. "
            "Update the payment method on the billing page.",
            code="payment_overdue",
            status_code=402,
        )
    quota = state.quotas[Metric.EVENTS_INGESTED]
    if state.overage_billed or quota is None:
        return
    used = int(used_raw or 0)
    if used + amount > quota:
        raise ApplicationError(
            f"Monthly quota of {quota} events on the {state.plan_name} plan reached "
            f"({used} used, this batch has {amount}). Upgrade on the billing page.",
            code="quota_exceeded",
            status_code=429,
            headers={"Retry-After": str(_seconds_to_next_month(now))},
        )


def usage_record(*, tenant: Tenant, metric: str, amount: int, now: datetime | None = None) -> int:
    """Count `amount` units of `metric` for the store in the current UTC hour and month
    (one Redis pipeline) and return the month-to-date total.

    Crossing 80% or 100% of the plan's monthly quota schedules one owner notification per
    threshold and month (after the caller's transaction commits). Never raises for Redis
    trouble (logged, returns 0): counting must not break ingestion or recommendations.
    """
    if amount <= 0:
        return 0
    metric = Metric(metric).value
    now = now or timezone.now()
    schema = tenant.schema_name
    hour_key = keys.usage_hour_key(schema, metric, now)
    month_key = keys.usage_month_key(schema, metric, now)
    dirty_key = keys.usage_dirty_key(now)
    pipe = redis_client().pipeline(transaction=False)
    pipe.incrby(hour_key, amount)
    pipe.expire(hour_key, keys.HOUR_COUNTER_TTL_SECONDS)
    pipe.incrby(month_key, amount)
    pipe.expire(month_key, keys.MONTH_COUNTER_TTL_SECONDS)
    pipe.sadd(dirty_key, schema)
    pipe.expire(dirty_key, keys.HOUR_COUNTER_TTL_SECONDS)
    pipe.get(keys.billing_state_key(schema))
    try:
        results = pipe.execute()
        total, cached_state = int(results[2]), results[6]
        _notify_thresholds_crossed(
            tenant=tenant,
            metric=metric,
            before=total - amount,
            after=total,
            now=now,
            cached_state=cached_state,
        )
    except redis.RedisError:
        logger.warning("usage not counted: Redis unavailable", exc_info=True)
        return 0
    return total


def _notify_thresholds_crossed(
    *, tenant: Tenant, metric: str, before: int, after: int, now: datetime, cached_state
) -> None:
    state = billing_state(tenant, cached=cached_state)
    quota = state.quotas.get(metric)
    if not quota:
        return
    for threshold in NOTIFY_THRESHOLDS:
        limit = quota * threshold / 100
        if before < limit <= after:
            flag = keys.usage_notified_key(tenant.schema_name, metric, now, threshold)
            # SET NX: concurrent crossings (several workers) notify once.
            if redis_client().set(flag, 1, nx=True, ex=keys.MONTH_COUNTER_TTL_SECONDS):
                _schedule_threshold_notification(
                    schema_name=tenant.schema_name,
                    metric=metric,
                    threshold=threshold,
                    quota=quota,
                    used=after,
                    month=keys.month_label(now),
                )


def _schedule_threshold_notification(**kwargs) -> None:
    from apps.billing.tasks import usage_threshold_notify_task

    transaction.on_commit(lambda: usage_threshold_notify_task.delay(**kwargs))
