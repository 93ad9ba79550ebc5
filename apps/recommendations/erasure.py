"""What the recommendations app erases and exports of a shopper (registered in apps.core.erasure
by RecommendationsConfig.ready): cached lists and the served-list log (Redis buffer and rows)."""

from __future__ import annotations

from typing import Any

import orjson
from django.db import connection

from apps.core.cache import redis_client
from apps.recommendations.cache import (
    fresh_claim_key,
    fresh_key,
    impressions_key,
    lock_key,
    shopper_recommendation_keys,
)
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


def shopper_fresh_lists_erase(user_id: str) -> int:
    """The shopper's re-scored lists (both variants) and their claims. Raises
    redis.RedisError."""
    schema = connection.schema_name
    return redis_client().delete(
        *(
            key(schema, user_id, exclude_seen=exclude_seen)
            for key in (fresh_key, fresh_claim_key)
            for exclude_seen in (True, False)
        )
    )


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


def _decoded(value: bytes | None) -> Any:
    if value is None:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value.decode(errors="replace")


def shopper_lists_export(user_id: str) -> dict[str, Any]:
    """The shopper's cached recommendation lists by key label (`<version>:<variant>`), for
    the GDPR export (`apps.catalog.selectors.shopper_data`)."""
    client = redis_client()
    lists: dict[str, Any] = {}
    for label, key in shopper_recommendation_keys(user_id=user_id).items():
        kind = client.type(key)
        if kind == b"string":
            value = _decoded(client.get(key))
        elif kind == b"list":
            value = [_decoded(entry) for entry in client.lrange(key, 0, -1)]
        elif kind == b"zset":
            value = [
                [_decoded(member), score]
                for member, score in client.zrange(key, 0, -1, withscores=True)
            ]
        elif kind == b"hash":
            value = {
                field.decode(): _decoded(entry) for field, entry in client.hgetall(key).items()
            }
        else:
            continue
        lists[label] = value
    return lists
