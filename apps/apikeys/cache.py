"""Keeps API-key authentication off the database: each process caches key rows for a few
seconds, and Redis carries what must be seen across processes at once (revocations, the
per-key rate window, the once-a-minute `last_used_at` refresh)."""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db.models.base import ModelState

from apps.apikeys.models import ApiKey
from apps.core.cache import tenant_key

_local: dict[tuple[str, str], tuple[float, ApiKey | None]] = {}
_local_lock = threading.Lock()


def local_get(schema: str, prefix: str) -> tuple[bool, ApiKey | None]:
    """(hit, key): a hit with key None means "known not to exist" (cached miss)."""
    entry = _local.get((schema, prefix))
    if entry is None or entry[0] <= time.monotonic():
        return False, None
    return True, _clone(entry[1]) if entry[1] is not None else None


def _clone(api_key: ApiKey) -> ApiKey:
    """A request's own copy of a cached row: its field values and model state are its own, so
    a request changing it leaves the cache and other threads' copies alone. The model state is
    built field by field: `copy.copy` goes through the pickling hooks, which cost a twentieth of
    a cached recommendation request."""
    clone = ApiKey.__new__(ApiKey)
    state = api_key.__dict__.copy()
    cached_state = state["_state"]
    state["_state"] = ModelState()
    state["_state"].db = cached_state.db
    state["_state"].adding = cached_state.adding
    state["_state"].fields_cache = cached_state.fields_cache.copy()
    clone.__dict__ = state
    return clone


def local_put(schema: str, prefix: str, api_key: ApiKey | None) -> None:
    ttl = settings.API_KEY_CACHE_SECONDS if api_key is not None else 1.0
    with _local_lock:
        _local[(schema, prefix)] = (time.monotonic() + ttl, api_key)


def local_forget(schema: str, prefix: str) -> None:
    with _local_lock:
        _local.pop((schema, prefix), None)


def revoked_marker_key(schema: str, prefix: str) -> str:
    return tenant_key("apikey", "revoked", prefix, schema_name=schema)


def throttle_key(schema: str, prefix: str, window: int) -> str:
    return tenant_key("apikey", "rate", prefix, window, schema_name=schema)


def last_used_marker_key(schema: str, prefix: str) -> str:
    return tenant_key("apikey", "used", prefix, schema_name=schema)
