"""Which stores had something happen: the periodic work of the platform runs for those only.

Beat used to send every periodic job to every store (1,500 tasks a minute at 500 idle stores).
Now the write paths that already talk to Redis add one command to the pipeline they send
anyway (`store_mark_active`), and one periodic task per job, in the public schema, sends the
per-store task to the stores marked:

- a *pending* kind (impressions waiting in Redis to be copied to PostgreSQL) is a set that is
  drained: `stores_pending_take` pops the stores (SPOP: a mark made during a run stays for the
  next one), and whoever cannot finish a store's work marks it again (`stores_pending_mark`), so
  no store's work is dropped.
- a *recent* kind (API traffic) is a sorted set store → last time seen: `stores_recent` lists
  the stores seen within a window (the usage anomaly scan keeps watching a store for an hour
  after its traffic stopped, so the `drop` rule sees it go quiet) and forgets older ones.

The keys are platform-level (public schema prefix); members are store schema names.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from enum import StrEnum

from django.conf import settings
from django_tenants.utils import get_tenant_model, schema_context
from redis.client import Pipeline

from apps.core.cache import redis_client, tenant_key

logger = logging.getLogger(__name__)


class Activity(StrEnum):
    IMPRESSIONS = "impressions"
    API_TRAFFIC = "api"


PENDING_KINDS = frozenset({Activity.IMPRESSIONS})
RECENT_KINDS = frozenset({Activity.API_TRAFFIC})
# One SPOP takes at most this many stores; the rest wait for the next run.
TAKE_LIMIT = 5_000


def activity_key(kind: Activity) -> str:
    shape = "pending" if kind in PENDING_KINDS else "recent"
    return tenant_key("activity", shape, kind.value, schema_name=settings.PUBLIC_SCHEMA_NAME)


def store_mark_active(pipe: Pipeline, kind: Activity, schema_names: Iterable[str]) -> None:
    """Add to `pipe` (sent by the caller with its own writes) that these stores have `kind`
    work or traffic now. One command whatever the number of stores."""
    members = [name for name in schema_names if name != settings.PUBLIC_SCHEMA_NAME]
    if not members:
        return
    if kind in PENDING_KINDS:
        pipe.sadd(activity_key(kind), *members)
    else:
        now = time.time()
        pipe.zadd(activity_key(kind), dict.fromkeys(members, now))


def stores_pending_mark(kind: Activity, schema_names: Iterable[str]) -> None:
    """Mark stores again (their work was not done or not finished). Raises redis.RedisError."""
    pipe = redis_client().pipeline(transaction=False)
    store_mark_active(pipe, kind, schema_names)
    pipe.execute()


def stores_pending_take(kind: Activity) -> list[str]:
    """Remove and return the stores marked with pending `kind` work (at most TAKE_LIMIT).
    The caller owns their work from now on: done, dispatched or marked again."""
    taken = redis_client().spop(activity_key(kind), TAKE_LIMIT) or []
    return sorted(member.decode() for member in taken)


def stores_recent(kind: Activity, *, within_seconds: float) -> list[str]:
    """Stores with `kind` traffic in the last `within_seconds`; older marks are forgotten."""
    key = activity_key(kind)
    oldest = time.time() - within_seconds
    pipe = redis_client().pipeline(transaction=False)
    pipe.zremrangebyscore(key, "-inf", f"({oldest}")
    pipe.zrangebyscore(key, oldest, "+inf")
    _, members = pipe.execute()
    return sorted(member.decode() for member in members)


def stores_dispatch(task, schema_names: list[str], *, remark: Activity | None = None) -> int:
    """Send `task` (no arguments) once into each store's schema; returns how many were sent.
    A store whose send failed is marked `remark` again (when given), so a later run retries
    it; the failure is logged, the other stores are still sent. Stores deleted since they
    were marked are skipped."""
    existing = set(
        get_tenant_model()
        .objects.filter(schema_name__in=schema_names)
        .values_list("schema_name", flat=True)
    )
    sent = 0
    failed: list[str] = []
    for schema_name in sorted(existing):
        try:
            with schema_context(schema_name):
                task.apply_async()
            sent += 1
        except Exception:
            logger.exception("could not send %s to %s", task.name, schema_name)
            failed.append(schema_name)
    if failed and remark is not None:
        stores_pending_mark(remark, failed)
    return sent


def sweep_due(kind: Activity, *, every_seconds: int) -> bool:
    """True once per `every_seconds` across all processes: time for the caller to look for
    stores whose mark was lost (a dispatcher killed between taking and sending, Redis down
    when a failed store was to be marked again)."""
    key = tenant_key("activity", "swept", kind.value, schema_name=settings.PUBLIC_SCHEMA_NAME)
    return bool(redis_client().set(key, 1, nx=True, ex=every_seconds))
