"""The shopper lists cached in Redis: precomputing the top-100 of recently active shoppers for
the active version, and forgetting one shopper's lists of every version (erasure)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from itertools import repeat
from typing import Literal

import orjson
import redis
from django.conf import settings
from django.db.models import Max

from apps.catalog.models import Shopper
from apps.core.cache import redis_client
from apps.recommendations import cache as rcache
from apps.recommendations.model_store import models
from apps.recommendations.models import ModelVersion
from apps.recommendations.services.common import store_schema

logger = logging.getLogger(__name__)


Precompute = Literal["async", "sync", "none"]
PRECOMPUTE_BATCH = 1_000


@dataclass
class PrecomputeReport:
    shoppers: int = 0
    seconds: float = 0.0
    complete: bool = True

    @property
    def per_second(self) -> float:
        return self.shoppers / self.seconds if self.seconds else 0.0


def recommendations_precompute(
    *, version_id: int, active_days: int | None = None, max_shoppers: int | None = None
) -> PrecomputeReport:
    """Write the top-100 of recently active shoppers (last `active_days`, default
    RECS_PRECOMPUTE_ACTIVE_DAYS, before the newest activity; None in settings = everyone)
    into Redis, in batches, for a version that is still active. Stops early (complete=False)
    when Redis fails: the request path fills the rest on demand."""
    schema = store_schema()
    report = PrecomputeReport()
    version = ModelVersion.objects.filter(pk=version_id, status=ModelVersion.Status.ACTIVE).first()
    if version is None:
        return report
    started = time.perf_counter()
    model = models.get(schema, version.pk, version.artifact_path).model
    days = settings.RECS_PRECOMPUTE_ACTIVE_DAYS if active_days is None else active_days
    limit = settings.RECS_PRECOMPUTE_MAX_SHOPPERS if max_shoppers is None else max_shoppers
    shoppers = Shopper.objects.exclude(last_seen_at=None)
    newest = shoppers.aggregate(newest=Max("last_seen_at"))["newest"]
    if newest is None:
        return report
    if days:
        shoppers = shoppers.filter(last_seen_at__gte=newest - timedelta(days=days))
    user_ids = list(shoppers.order_by("-last_seen_at").values_list("user_id", flat=True)[:limit])
    known = model.user_index.lookup(user_ids) >= 0
    user_ids = [user for user, ok in zip(user_ids, known.tolist(), strict=True) if ok]
    strategy = model.strategy
    ttl = settings.RECS_CACHE_TTL_SECONDS
    variants = [True, False] if model.repeat_store else [True]
    client = redis_client()
    for start in range(0, len(user_ids), PRECOMPUTE_BATCH):
        batch = user_ids[start : start + PRECOMPUTE_BATCH]
        pipe = client.pipeline(transaction=False)
        for exclude_seen in variants:
            lists = model.explained_lists(batch, k=100, exclude_seen=exclude_seen)
            for user_id, (items, reasons) in zip(batch, lists, strict=True):
                key = rcache.list_key(schema, version.pk, user_id, exclude_seen=exclude_seen)
                # Scores as served (Python's round to 6 places, as serving's filter rounds):
                # a third of the bytes of full floats, for lists Redis holds per shopper.
                scores = list(map(round, [score for _, score in items], repeat(6, len(items))))
                items = list(zip([item for item, _ in items], scores, strict=True))
                pipe.set(key, orjson.dumps([strategy, items, reasons]), ex=ttl)
        try:
            pipe.execute()
        except redis.RedisError:
            logger.warning("precompute of v%s stopped: Redis unavailable", version.number)
            report.complete = False
            break
        report.shoppers += len(batch)
    report.seconds = time.perf_counter() - started
    logger.info(
        "precomputed v%s: %d shoppers in %.1fs", version.number, report.shoppers, report.seconds
    )
    return report


def shopper_recommendations_forget(*, user_id: str) -> int:
    """Delete the shopper's cached lists of every version of the store; returns how many
    keys were removed. Raises redis.RedisError when Redis is unreachable (erasure must then
    be retried, not reported done)."""
    schema = store_schema()
    version_ids = list(ModelVersion.objects.values_list("pk", flat=True))
    keys = [
        rcache.list_key(schema, version_id, user_id, exclude_seen=flag)
        for version_id in version_ids
        for flag in (True, False)
    ]
    return int(redis_client().delete(*keys)) if keys else 0
