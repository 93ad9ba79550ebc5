"""What the recommendations app erases of a shopper (registered in apps.core.erasure by
RecommendationsConfig.ready): cached lists and the served-list log (Redis buffer and rows)."""

from __future__ import annotations

import orjson
from django.db import connection

from apps.catalog.selectors import shopper_recommendation_keys
from apps.core.cache import redis_client
from apps.recommendations.cache import impressions_key, lock_key
from apps.recommendations.impressions import impressions_flush
from apps.recommendations.models import Impression
from apps.recommendations.services import shopper_recommendations_forget

# The persist job trims the batches it copied by count; the buffer is filtered under its lock.
PERSIST_LOCK_WAIT_SECONDS = 5


def shopper_lists_erase(user_id: str) -> int:
    """Every cached list of the shopper: those of the store's versions, and any other
    `recs:<version>:<variant>:<user_id>` key (a deleted version's). Raises redis.RedisError."""
    removed = shopper_recommendations_forget(user_id=user_id)
    leftovers = list(shopper_recommendation_keys(user_id=user_id).values())
    if leftovers:
        removed += redis_client().delete(*leftovers)
    return removed


def shopper_impressions_erase(user_id: str) -> int:
    """The shopper's served lists: rows in PostgreSQL and records still waiting in the store's
    Redis buffer (this process's memory buffer is pushed first). Raises redis.RedisError,
    also when the persist job holds the buffer for longer than PERSIST_LOCK_WAIT_SECONDS."""
    schema = connection.schema_name
    impressions_flush()
    client = redis_client()
    key = impressions_key(schema)
    removed = 0
    with client.lock(
        lock_key(schema, "persist"), timeout=300, blocking_timeout=PERSIST_LOCK_WAIT_SECONDS
    ):
        for raw in client.lrange(key, 0, -1):
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if len(record) > 2 and record[2] == user_id:
                removed += client.lrem(key, 0, raw)
        rows, _ = Impression.objects.filter(user_id=user_id).delete()
    return removed + rows
