"""Usage counting and quota checks on the request path: Redis only, one round trip each.

Other apps call:
- `ingest_reserve(tenant=, amount=)` inside an ingest batch's transaction, once the batch knows
  how many new events it stores: reserves them against the month's quota atomically (Lua),
  then `settle(stored)` and `release()` if the transaction rolls back;
- `usage_record(tenant=, metric=, amount=)` after other usage happened (recommendations served);
- `quota_check_ingest(tenant=, amount=)`: the same refusal without reserving (read-only check).

Quotas are per calendar month (UTC). With Redis up they are exact under concurrency: the month
counter only moves through the reserve script, which refuses a batch that would pass the quota.
With Redis down, ingestion goes on: the batch is counted in PostgreSQL (`UsageFallback`, same
transaction, row-locked per store and hour) and checked against the usage PostgreSQL knows
(rolled-up hours plus fallback counts). What it does not know is usage counted in Redis but not
yet rolled up when the outage began (about two hours at most: the hourly rollup covers hours
ended ROLLUP_LAG earlier), which bounds the overrun; the rollup and the next reservation fold
the fallback counts back in, so it is billed.

With Redis up, a reservation is one Redis script call and no query: a process that found no
fallback counts for the month trusts that for FALLBACK_RECHECK_SECONDS per store (forgotten at
once when it counts in PostgreSQL itself). Fallback counts written by another process during an
outage are so folded in within FALLBACK_RECHECK_SECONDS of Redis' return, a window that adds to
the outage's bounded overrun above; with Redis up throughout, there are none. The PostgreSQL
side of all this is apps.billing.usage_fallback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from django.db import transaction
from django.utils import timezone

from apps.billing import keys, usage_fallback
from apps.billing.models import Metric, UsageRecord
from apps.billing.selectors import BillingState, billing_state, billing_state_compute
from apps.core.cache import redis_client
from apps.core.dispatch import dispatch_on_commit
from apps.core.errors import ApplicationError
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

# Percentages of a monthly quota at which the owner is told, once per month each.
NOTIFY_THRESHOLDS = (80, 100)

# How often a reservation decides again when the billing state changed under it.
STATE_ATTEMPTS = 3
# schema -> the cached billing state (raw JSON) this process last reserved under; the reserve
# script checks it is still the cached one (so no separate read of it per batch).
_state_seen: dict[str, bytes] = {}


def _seconds_to_next_month(now: datetime) -> int:
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    next_month = (first + timedelta(days=32)).replace(day=1)
    return max(1, int((next_month - now).total_seconds()))


def _payment_overdue() -> ApplicationError:
    return ApplicationError(
        "Ingestion is paused: the last payment failed and the grace period has ended. "
        "Update the payment method on the billing page.",
        code="payment_overdue",
        status_code=402,
    )


def _quota_exceeded(*, quota: int, plan_name: str, used: int, amount: int, now: datetime):
    return ApplicationError(
        f"Monthly quota of {quota} events on the {plan_name} plan reached "
        f"({used} used, this batch has {amount}). Upgrade on the billing page.",
        code="quota_exceeded",
        status_code=429,
        headers={"Retry-After": str(_seconds_to_next_month(now))},
    )


def quota_check_ingest(*, tenant: Tenant, amount: int, now: datetime | None = None) -> None:
    """Refuse an ingest batch of `amount` events before anything is stored (a read-only check;
    `ingest_reserve` is the one that holds under concurrency).

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
        raise _payment_overdue()
    quota = state.quotas[Metric.EVENTS_INGESTED]
    if state.overage_billed or quota is None:
        return
    used = int(used_raw or 0)
    if used + amount > quota:
        raise _quota_exceeded(
            quota=quota, plan_name=state.plan_name, used=used, amount=amount, now=now
        )


# KEYS: month counter, fallback-folded marker, billing state. ARGV: amount, quota (-1: none),
# TTL, fallback total in PostgreSQL this month, seed ("" unless the caller computed one after a
# miss), the billing state the quota was taken from ("": not checked).
# Returns {1, total} reserved, {0, used} refused, {-2, state} when the billing state is not the
# one given (the caller decides again on the current one, nil when not cached), or {-1, 0} when
# the month counter is missing (new month or Redis lost its data): the caller seeds it from
# PostgreSQL and calls again.
_RESERVE_SCRIPT = """
if ARGV[6] ~= '' then
    local state = redis.call('GET', KEYS[3])
    if state ~= ARGV[6] then return {-2, state} end
end
local used = redis.call('GET', KEYS[1])
if not used then
    if ARGV[5] == '' then return {-1, 0} end
    redis.call('SET', KEYS[1], ARGV[5], 'EX', ARGV[3])
    redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[3])
    used = tonumber(ARGV[5])
else
    used = tonumber(used)
    local folded = tonumber(redis.call('GET', KEYS[2]) or '0')
    local fallback = tonumber(ARGV[4])
    if fallback > folded then
        used = redis.call('INCRBY', KEYS[1], fallback - folded)
        redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[3])
    end
end
local amount = tonumber(ARGV[1])
local quota = tonumber(ARGV[2])
if quota >= 0 and amount > 0 and used + amount > quota then return {0, used} end
local total = redis.call('INCRBY', KEYS[1], amount)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, total}
"""


@dataclass
class Reservation:
    """Events of one batch reserved against the month's quota; see `ingest_reserve`."""

    tenant: Tenant
    amount: int
    now: datetime
    via: str  # "redis" (month counter moved) or "postgres" (UsageFallback row, same transaction)
    total: int = 0

    def settle(self, stored: int) -> None:
        """The batch stored `stored` events (<= amount; concurrent duplicates stored by another
        batch are not charged): give back the rest, and count the stored ones in the hour's
        billing counter once the transaction commits."""
        unused = self.amount - stored
        self.amount = stored
        if self.via == "postgres":
            if unused:
                usage_fallback.fallback_add(self.tenant, Metric.EVENTS_INGESTED, self.now, -unused)
            return
        if unused:
            self._give_back(unused)
        if stored:
            tenant, total, now = self.tenant, self.total - unused, self.now
            transaction.on_commit(
                lambda: usage_record(
                    tenant=tenant,
                    metric=Metric.EVENTS_INGESTED,
                    amount=stored,
                    now=now,
                    month_total=total,
                ),
                robust=True,
            )

    def release(self) -> None:
        """The batch's transaction rolled back: nothing of the reservation is used."""
        if self.via == "redis" and self.amount:
            self._give_back(self.amount)
        self.amount = 0  # a "postgres" reservation rolled back with the transaction

    def _give_back(self, amount: int) -> None:
        month_key = keys.usage_month_key(self.tenant.schema_name, Metric.EVENTS_INGESTED, self.now)
        try:
            redis_client().decrby(month_key, amount)
        except redis.RedisError:
            logger.warning("quota reservation not released: Redis unavailable", exc_info=True)
        self.total -= amount


def _limit(state: BillingState, metric: str) -> int:
    quota = state.quotas[metric]
    return -1 if state.overage_billed or quota is None else quota


def _reserve_in_redis(
    tenant: Tenant, metric: str, amount: int, now: datetime
) -> Reservation | None:
    """`ingest_reserve` with Redis up: usually one round trip, the reserve script, which checks
    that the billing state this process decided on (the one it read last) is still the cached
    one; when it is not, the decision is taken again on the current one. None when Redis
    answered but the state would not settle (kept changing): the caller reserves in
    PostgreSQL. Raises redis.RedisError."""
    schema = tenant.schema_name
    state_key = keys.billing_state_key(schema)
    blob = _state_seen.get(schema)
    fresh = blob is None
    if fresh:
        blob = redis_client().get(state_key)
    script = redis_client().register_script(_RESERVE_SCRIPT)
    script_keys = [
        keys.usage_month_key(schema, metric, now),
        keys.usage_fallback_folded_key(schema, metric, now),
        state_key,
    ]
    for _attempt in range(STATE_ATTEMPTS):
        if blob is None:
            state = billing_state(tenant)  # computed from PostgreSQL and cached
            blob = state.to_json().encode()
        else:
            state = BillingState.from_json(blob)
        _state_seen[schema] = blob
        if state.read_only(now):
            if not fresh:  # decided on this process's copy: check it is current
                blob, fresh = redis_client().get(state_key), True
                continue
            raise _payment_overdue()
        limit = _limit(state, metric)
        fallback_total = sum(usage_fallback.fallback_recent(tenant, metric, now).values())
        args = [amount, limit, keys.MONTH_COUNTER_TTL_SECONDS, fallback_total, "", blob]
        status, value = script(keys=script_keys, args=args)
        if status == -1:
            fallback = usage_fallback.fallback_committed(tenant, metric, now)
            args[3] = sum(fallback.values())
            args[4] = usage_fallback.month_seed(tenant, metric, now, fallback)
            status, value = script(keys=script_keys, args=args)
        if status == -2:
            blob, fresh = value, True
            continue
        if status == 0:
            raise _quota_exceeded(
                quota=limit, plan_name=state.plan_name, used=value, amount=amount, now=now
            )
        return Reservation(tenant=tenant, amount=amount, now=now, via="redis", total=value)
    _state_seen.pop(schema, None)
    return None


def ingest_reserve(*, tenant: Tenant, amount: int, now: datetime | None = None) -> Reservation:
    """Reserve `amount` new events of an ingest batch against the store's monthly quota, inside
    the batch's transaction (before or after its rows are inserted: a refusal raises, and the
    transaction takes back what it wrote).

    Raises ApplicationError 402 `payment_overdue` or 429 `quota_exceeded` (whole batch refused,
    nothing reserved) as `quota_check_ingest`; plans billing overage and plans without an
    events quota are counted but never refused. Exact under concurrency while Redis is up (one
    Lua script checks the billing state and increments the month counter). Redis down: the
    batch is counted in PostgreSQL in the caller's transaction and checked against the usage
    PostgreSQL knows; it never fails for Redis trouble. The caller must `settle(stored)` after
    inserting and `release()` if its transaction rolls back.
    """
    now = now or timezone.now()
    metric = Metric.EVENTS_INGESTED.value
    try:
        reservation = _reserve_in_redis(tenant, metric, amount, now)
    except redis.RedisError:
        logger.warning("quota reserved in PostgreSQL: Redis unavailable", exc_info=True)
    else:
        if reservation is not None:
            return reservation
    state = billing_state_compute(tenant)
    if state.read_only(now):
        raise _payment_overdue()
    limit = _limit(state, metric)
    # Redis down: count in PostgreSQL first (the row lock orders concurrent batches), then check
    # what PostgreSQL knows: per hour, the rolled-up row (which includes that hour's fallback
    # count once rolled up) or the fallback count, whichever is larger.
    usage_fallback.fallback_add(tenant, metric, now, amount)
    if limit >= 0 and amount > 0:
        fallback = usage_fallback.fallback_by_hour(tenant, metric, now)
        rolled = dict(
            UsageRecord.objects.filter(
                tenant_id=tenant.id, metric=metric, hour__gte=usage_fallback.month_start(now)
            ).values_list("hour", "quantity")
        )
        hours = set(rolled) | set(fallback)
        used = sum(max(rolled.get(h, 0), fallback.get(h, 0)) for h in hours) - amount
        if used + amount > limit:
            raise _quota_exceeded(
                quota=limit, plan_name=state.plan_name, used=used, amount=amount, now=now
            )
    return Reservation(tenant=tenant, amount=amount, now=now, via="postgres")


def usage_record(
    *,
    tenant: Tenant,
    metric: str,
    amount: int,
    now: datetime | None = None,
    month_total: int | None = None,
) -> int:
    """Count `amount` units of `metric` for the store in the current UTC hour and month
    (one Redis pipeline) and return the month-to-date total. `month_total`: the month counter
    already holds these units (an `ingest_reserve` reservation, whose total it is); only the
    hour counter moves.

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
    if month_total is None:
        pipe.incrby(month_key, amount)
    else:
        pipe.get(month_key)
    pipe.expire(month_key, keys.MONTH_COUNTER_TTL_SECONDS)
    pipe.sadd(dirty_key, schema)
    pipe.expire(dirty_key, keys.HOUR_COUNTER_TTL_SECONDS)
    pipe.get(keys.billing_state_key(schema))
    try:
        results = pipe.execute()
        total, cached_state = int(results[2] or 0), results[6]
        if month_total is not None:
            total = month_total
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

    dispatch_on_commit(usage_threshold_notify_task, **kwargs)
