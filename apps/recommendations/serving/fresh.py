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

One re-scoring per new event, however many requests ask at once: a page showing two widgets
for the shopper, or the same shopper on two tabs, sends its requests together, and each used
to re-score the same list (a third of the re-scorings under bench/serving.py --protocol
issue15). The request that reads the events also claims the re-scoring (`fresh_claim_command`,
in the same round trip); the others wait up to FRESH_WAIT_SECONDS for its list
(`fresh_await`), and re-score it themselves only if it does not come.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import orjson
from django.db import connection

from apps.catalog.recent import RecentEvent
from apps.core.redis_batch import execute_commands
from apps.recommendations import cache as rcache
from apps.recommendations.model_store import LoadedModel
from apps.recommendations.serving.state import LIST_SIZE, Arm

# Which event types make an item "seen" when the store has not chosen (Tenant.seen_event_types
# is null). A store whose model found repeat buying (`repeat_store`) keeps purchases listable.
SEEN_EVENT_TYPES_DEFAULT = ("purchase", "rating", "dismiss")
FRESH_LIST_TTL_SECONDS = 300
FRESH_SUFFIX = "+fresh"
# A claim outlives any re-scoring (a few milliseconds); one whose request died expires.
FRESH_CLAIM_MILLISECONDS = 1000
# How long a request waits for the list another one is re-scoring, and how often it looks.
FRESH_WAIT_SECONDS = 0.05
FRESH_POLL_SECONDS = 0.003


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


def fresh_claim_command(
    schema_name: str, user_id: str, *, exclude_seen: bool, marker: str
) -> tuple[object, ...]:
    """The Redis command claiming the re-scoring of the list `marker` describes: its reply is
    OK for the claiming request, None when another one holds the claim."""
    key = rcache.fresh_claim_key(schema_name, user_id, exclude_seen=exclude_seen)
    return ("SET", key, marker, "NX", "PX", FRESH_CLAIM_MILLISECONDS)


def fresh_await(
    schema_name: str, user_id: str, *, exclude_seen: bool, marker: str
) -> tuple[str, list, list | None, set[str]] | None:
    """The list another request claimed to re-score for `marker` (`fresh_cached`'s value),
    once it is cached; None after FRESH_WAIT_SECONDS (or with Redis down): re-score it."""
    key = rcache.fresh_key(schema_name, user_id, exclude_seen=exclude_seen)
    deadline = time.monotonic() + FRESH_WAIT_SECONDS
    while time.monotonic() < deadline and rcache.redis_available():
        time.sleep(FRESH_POLL_SECONDS)
        reply = rcache.redis_call(lambda r: execute_commands([("GET", key)]), None)
        found = fresh_cached(reply[0], marker) if reply is not None else None
        if found is not None:
            return found
    return None


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
        claim = rcache.fresh_claim_key(schema_name, user_id, exclude_seen=exclude_seen)
        blob = orjson.dumps([marker, strategy, items, recs.reasons, sorted(exclude)])
        # The list, then the claim given back (whoever holds it: a stale one only delays).
        rcache.redis_call(
            lambda r: execute_commands(
                [("SET", key, blob, "EX", FRESH_LIST_TTL_SECONDS), ("DEL", claim)]
            ),
            None,
        )
    return strategy, items, recs.reasons
