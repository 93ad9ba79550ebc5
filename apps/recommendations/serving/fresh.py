"""Read-your-writes freshness: a shopper's events since the serving version's training data
cut-off (`Arm.cutoff`) change their personal list on the next request.

Nothing new since training: the precomputed list is served untouched (the recent-events list
arrives in the round trip that reads it, see `shopper.py`). Something new: the model re-scores
the list with those events (`RecommenderModel.recommend_fresh`), items of the "seen" event types
(a store setting, `Tenant.seen_event_types`) are left out when `exclude_seen` is on, and the
result is cached under `fresh:u|a:<user_id>` together with a marker of the latest event it
reflects (the shopper's `recent-at:` value, read in the serving round trip), so the shopper's
next event makes it stale at once (and FRESH_LIST_TTL_SECONDS bounds it otherwise), and a list
still current is served without reading the events: no second round trip. The recent events
come from Redis (`apps.catalog.recent`), or PostgreSQL when Redis is down (then nothing is
cached).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from django.db import connection

from apps.catalog.recent import RecentEvent
from apps.recommendations import cache as rcache
from apps.recommendations.model_store import LoadedModel
from apps.recommendations.serving.state import LIST_SIZE, Arm

# Which event types make an item "seen" when the store has not chosen (Tenant.seen_event_types
# is null). A store whose model found repeat buying (`repeat_store`) keeps purchases listable.
SEEN_EVENT_TYPES_DEFAULT = ("purchase", "rating", "dismiss")
FRESH_LIST_TTL_SECONDS = 300
FRESH_SUFFIX = "+fresh"


def store_seen_types() -> tuple[str, ...] | None:
    """The current store's choice, or None for the defaults."""
    chosen = getattr(connection.tenant, "seen_event_types", None)
    return tuple(chosen) if chosen is not None else None


def seen_types(loaded: LoadedModel | None) -> frozenset[str]:
    """The event types that count as "seen" in the current store for the model `loaded`."""
    chosen = store_seen_types()
    if chosen is not None:
        return frozenset(chosen)
    if loaded is not None and loaded.model.repeat_store:
        return frozenset(SEEN_EVENT_TYPES_DEFAULT) - {"purchase"}
    return frozenset(SEEN_EVENT_TYPES_DEFAULT)


def seen_since_training(events: Sequence[RecentEvent], types: frozenset[str]) -> set[str]:
    return {event[0] for event in events if event[1] in types}


def fresh_marker(arm: Arm, latest: bytes) -> str:
    """What a re-scored list reflects: the version, the shopper's `recent-at:` value (their
    newest event time and how many events were pushed: any new event changes it, see
    apps.catalog.recent) and the store's seen-types choice. Known from the serving round
    trip, so a list still current is served without reading the events."""
    chosen = store_seen_types()
    types = ",".join(sorted(chosen)) if chosen is not None else "default"
    return f"{arm.version_id}|{latest.decode()}|{types}"


def fresh_cached(
    payload: bytes | None, marker: str
) -> tuple[str, list, list | None, set[str]] | None:
    """(strategy, items, their reasons, new items of the seen types) of a cached re-scored list
    when it reflects `marker`."""
    if payload is None:
        return None
    try:
        cached_marker, strategy, items, reasons, seen = orjson.loads(payload)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    return (strategy, items, reasons, set(seen)) if cached_marker == marker else None


def fresh_compute(
    *,
    schema_name: str,
    arm: Arm,
    loaded: LoadedModel,
    user_id: str,
    events: Sequence[RecentEvent],
    exclude: set[str],
    exclude_seen: bool,
    marker: str | None,
) -> tuple[str, list[tuple[str, float]], list | None]:
    """Re-score the shopper's list with their events since training, and cache it with its
    reasons (and `exclude`) under `marker` (`fresh_marker`; None: not cached). With
    `exclude_seen`, what the shopper had in training and `exclude` (new items of the store's
    seen types) are left out; other new items (a view, a repeat-buy purchase) may be listed.
    Returns (strategy, items, reasons)."""
    model = loaded.model
    leave_out = set(model.seen_items(user_id)) | exclude if exclude_seen else set()
    recs = model.recommend_fresh(
        user_id,
        [(item, kind, ts, value) for item, kind, ts, _id, value in events],
        k=LIST_SIZE,
        exclude_seen=False,
        exclude_item_ids=leave_out,
    )
    strategy = recs.strategy + FRESH_SUFFIX
    items = [(item, float(score)) for item, score in recs.items]
    if marker is not None:
        key = rcache.fresh_key(schema_name, user_id, exclude_seen=exclude_seen)
        blob = orjson.dumps([marker, strategy, items, recs.reasons, sorted(exclude)])
        rcache.redis_call(lambda r: r.set(key, blob, ex=FRESH_LIST_TTL_SECONDS), None)
    return strategy, items, recs.reasons
