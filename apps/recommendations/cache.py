"""Redis keys of the recommendation cache, and Redis access that degrades instead of failing.

Keys (all through `apps.core.cache.tenant_key`, so they lead with the store's schema):

- `recs:<version id>:u:<user_id>`      precomputed / filled top-100 (seen items excluded)
- `recs:<version id>:a:<user_id>`      the same with seen items allowed (`exclude_seen=false`)
- `fresh:u|a:<user_id>`                a list re-scored with the shopper's events since training,
                                        with the latest event it reflects (serving/fresh.py)
- `fresh-claim:u|a:<user_id>`          which request is re-scoring that list now (for a second
                                        of at most), so concurrent ones wait for its answer
- `recs:state`                          token changed on every activation, rollback and
                                        experiment start/stop: serving processes reload their
                                        state when it moves
- `recs:catalog`                        counter bumped when items are hidden, go out of
                                        stock or change
- `recs:impressions`                    served-list log waiting to be copied into PostgreSQL
- `recs:persist-lock`

Version ids are part of the list keys, so activating a version switches every shopper at once;
the lists of older versions simply expire.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from django.db import connection

from apps.core.cache import redis_client, tenant_key
from apps.core.ids import random_id

logger = logging.getLogger(__name__)

T = TypeVar("T")

# After a Redis error, skip Redis for this long: a request must not wait out a connect timeout
# on every call while Redis is down.
REDIS_RETRY_AFTER_SECONDS = 2.0
_redis_down_until = 0.0
_redis_lock = threading.Lock()


def list_key(schema_name: str, version_id: int, user_id: str, *, exclude_seen: bool = True) -> str:
    return tenant_key(
        "recs", version_id, "u" if exclude_seen else "a", user_id, schema_name=schema_name
    )


def fresh_key(schema_name: str, user_id: str, *, exclude_seen: bool = True) -> str:
    return tenant_key("fresh", "u" if exclude_seen else "a", user_id, schema_name=schema_name)


def fresh_claim_key(schema_name: str, user_id: str, *, exclude_seen: bool = True) -> str:
    return tenant_key("fresh-claim", "u" if exclude_seen else "a", user_id, schema_name=schema_name)


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def shopper_recommendation_keys(*, user_id: str) -> dict[str, bytes]:
    """Redis keys of the shopper's cached recommendation lists in the current store, by model
    version label: tenant_key("recs", <model_version>, <user_id>), also with the variant
    segment, tenant_key("recs", <model_version>, "u"|"a", <user_id>) (`list_key`)."""
    pattern = tenant_key("recs", "*", _glob_escape(user_id))
    prefix = tenant_key("recs", "")
    suffix = ":" + user_id
    keys = {}
    for key in redis_client().scan_iter(match=pattern, count=1000):
        text = key.decode()
        if not text.endswith(suffix):
            continue
        # `*` may span colons: keep only a version segment (plus a variant), so that shopper
        # "b" never matches the key of shopper "a:b".
        label = text[len(prefix) : len(text) - len(suffix)]
        version, _, variant = label.partition(":")
        if version and ":" not in variant and variant in ("", "u", "a"):
            keys[label] = key
    return keys


def state_key(schema_name: str) -> str:
    return tenant_key("recs", "state", schema_name=schema_name)


def catalog_key(schema_name: str) -> str:
    return tenant_key("recs", "catalog", schema_name=schema_name)


def impressions_key(schema_name: str) -> str:
    return tenant_key("recs", "impressions", schema_name=schema_name)


def lock_key(schema_name: str, name: str) -> str:
    return tenant_key("recs", f"{name}-lock", schema_name=schema_name)


def redis_available() -> bool:
    return time.monotonic() >= _redis_down_until


def redis_failed(exc: Exception) -> None:
    global _redis_down_until
    with _redis_lock:
        first = _redis_down_until <= time.monotonic()
        _redis_down_until = time.monotonic() + REDIS_RETRY_AFTER_SECONDS
    if first:
        logger.warning("recommendations: Redis unavailable, serving without cache (%s)", exc)


def redis_call(fn: Callable[[redis.Redis], T], default: T) -> T:
    """`fn(client)`, or `default` when Redis is down (now or within the last seconds)."""
    if not redis_available():
        return default
    try:
        return fn(redis_client())
    except redis.RedisError as exc:
        redis_failed(exc)
        return default


def state_changed(schema_name: str | None = None) -> None:
    """Tell every serving process that the active version or experiment of the store changed.
    Call after commit. This process forgets its state at once; others see the new token on
    their next request (or within the state TTL when Redis is down)."""
    from apps.recommendations import serving

    schema = schema_name or connection.schema_name
    serving.forget_store(schema)
    redis_call(lambda r: r.set(state_key(schema), random_id()), None)


def catalog_changed(schema_name: str | None = None) -> None:
    """Hook for the catalog services, after commit: items were hidden, went out of stock or
    changed categories. Serving processes reload the store's item filters on their next
    request."""
    from apps.recommendations import serving

    schema = schema_name or connection.schema_name
    serving.forget_catalog(schema)
    redis_call(lambda r: r.incr(catalog_key(schema)), None)
