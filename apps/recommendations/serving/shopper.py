"""A shopper's lists: the personal top-k (cached list, model, cold start or fallback; with the
Redis read that the API prefetches) and buy-again."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import redis
from django.conf import settings
from django.db import DatabaseError, connection

from apps.catalog.recent import (
    recent_command,
    recent_from_database,
    recent_from_reply,
    recent_is_new,
    recent_latest_key,
)
from apps.core.erasure import tombstone_command, tombstone_from_reply
from apps.core.redis_batch import Pending, RedisBatch, execute_commands
from apps.recommendations import cache as rcache
from apps.recommendations.model_store import LoadedModel
from apps.recommendations.serving.fallbacks import db_list, db_recent, db_seen
from apps.recommendations.serving.fresh import (
    fresh_await,
    fresh_cached,
    fresh_claim_command,
    fresh_compute,
    fresh_marker,
    seen_since_training,
    seen_types,
)
from apps.recommendations.serving.results import Filters, Served, _filtered, _log, _new_id
from apps.recommendations.serving.state import (
    _UNSET,
    COLD_LIST_TTL_SECONDS,
    ERASED_SHOPPER,
    LIST_SIZE,
    Arm,
    StoreState,
    _tokens_and_tombstone,
    catalog_state,
    erased_for,
    serving_model,
    store_state,
)


def _compute_user_list(
    schema_name: str,
    arm: Arm,
    loaded: LoadedModel,
    user_id: str,
    exclude_seen: bool,
    recent: list[str] | None = None,
) -> tuple[str, list[tuple[str, float]], list | None, bool]:
    """(strategy, top-100, their reasons or None, shopper known to the model) computed from
    the model. `recent`: the session of a shopper the model must treat as unknown (read from
    PostgreSQL otherwise)."""
    model = loaded.model
    known = model.user_index.get(user_id) is not None
    if arm.strategy == "trending":
        return "trending", loaded.order("trending")[: LIST_SIZE * 2], None, known
    if arm.strategy == "popularity":
        recs = model.with_strategy("popularity").recommend_for_user(
            user_id, k=LIST_SIZE, exclude_seen=exclude_seen
        )
        return "popularity", list(recs.items), recs.reasons, known
    if recent is None and not known:
        recent = db_recent(user_id)
    recs = model.recommend_for_user(
        user_id, k=LIST_SIZE, exclude_seen=exclude_seen, recent_item_ids=recent
    )
    return recs.strategy, list(recs.items), recs.reasons, known


@dataclass
class ShopperPrefetch:
    """The Redis read of a shopper's list, queued in a request's batch (see
    `shopper_prefetch`) before the arm serving the shopper may have to be re-read."""

    state: StoreState
    arm: Arm
    pending: Pending

    def values(self) -> tuple[list, list] | None:
        """(MGET reply, tombstone HMGET reply), or None when Redis failed."""
        try:
            lists, tombstone = self.pending.result()
        except redis.RedisError as exc:
            rcache.redis_failed(exc)
            return None
        return lists, tombstone


def _list_keys(schema: str, arm: Arm, user_id: str, exclude_seen: bool) -> list[str]:
    """The precomputed list and the re-scored one (serving/fresh.py) of `arm`'s version."""
    return [
        rcache.list_key(schema, arm.version_id, user_id, exclude_seen=exclude_seen),
        rcache.fresh_key(schema, user_id, exclude_seen=exclude_seen),
    ]


def _shopper_commands(
    schema: str, arm: Arm, user_id: str, exclude_seen: bool
) -> list[tuple[object, ...]]:
    """The one round trip: tokens, the shopper's newest event time and lists (MGET), and the
    tombstone. The recent events themselves are read only when that time is after the
    model's cut-off (`_events_since_training`)."""
    keys = [
        rcache.state_key(schema),
        rcache.catalog_key(schema),
        recent_latest_key(user_id, schema_name=schema),
    ]
    if arm.version_id is not None and arm.strategy == "model":
        keys += _list_keys(schema, arm, user_id, exclude_seen)
    return [("MGET", *keys), tombstone_command(schema, user_id)]


def _events_since_training(
    schema: str, arm: Arm, user_id: str, latest: object, claim: tuple[object, ...] | None
) -> tuple[list, bool]:
    """(the shopper's events after `arm.cutoff`, whether this request may re-score the list).

    No events when the newest-event time read in the round trip (`latest`, _UNSET when Redis
    did not answer) is not after the cut-off; else the recent list (a second round trip, which
    also sends `claim`, the re-scoring's claim, when given: False when another request holds
    it), or PostgreSQL when Redis is down."""
    if latest is not _UNSET:
        if not recent_is_new(latest, arm.cutoff):
            return [], True
        commands = [recent_command(schema, user_id), *([claim] if claim else [])]
        reply = rcache.redis_call(lambda r: execute_commands(commands), None)
        if reply is not None:
            return recent_from_reply(reply[0], arm.cutoff), claim is None or reply[1] is not None
    return recent_from_database(user_id, arm.cutoff), True


def shopper_prefetch(
    *, batch: RedisBatch, user_id: str, exclude_seen: bool
) -> ShopperPrefetch | None:
    """Queue the MGET of `recommend_for_shopper` in `batch` (nothing is sent yet): the API
    queues it before authentication so the key gate and the read share one round trip. None
    when Redis is known to be down or the store's state cannot be read."""
    if not rcache.redis_available():
        return None
    schema = connection.schema_name
    try:
        state = store_state(schema)
    except DatabaseError:
        return None
    arm = state.arm_for(user_id)
    return ShopperPrefetch(
        state, arm, batch.add(*_shopper_commands(schema, arm, user_id, exclude_seen))
    )


def recommend_for_shopper(
    *,
    user_id: str,
    filters: Filters,
    exclude_seen: bool = True,
    log: bool = True,
    prefetch: ShopperPrefetch | None = None,
) -> Served:
    """Top `k` items for a shopper of the current store. Unknown shoppers get a cold-start list
    (their recent events as a session, else trending); never raises for a missing model or
    Redis outage. A shopper with events since the version's training gets the list re-scored
    with them, seen items left out (serving/fresh.py). `prefetch` (from `shopper_prefetch`
    with the same user_id and exclude_seen) replaces the Redis read."""
    schema = connection.schema_name
    if prefetch is not None:
        state, arm = prefetch.state, prefetch.arm
    else:
        state = store_state(schema)
        arm = state.arm_for(user_id)
    cached_list = arm.version_id is not None and arm.strategy == "model"
    payload = fresh_payload = None
    catalog_token: object = _UNSET
    latest_event: object = _UNSET
    tombstone_reply = None
    if prefetch is not None or rcache.redis_available():
        if prefetch is not None:
            replies = prefetch.values()
        else:
            commands = _shopper_commands(schema, arm, user_id, exclude_seen)
            replies = rcache.redis_call(lambda r: execute_commands(commands), None)
        res, tombstone_reply = replies if replies is not None else (None, None)
        if res is not None:
            catalog_token, latest_event = res[1], res[2]
            if res[0] != state.token:
                previous = arm
                state = store_state(schema, res[0])
                arm = state.arm_for(user_id)
                cached_list = arm.version_id is not None and arm.strategy == "model"
                if arm != previous and cached_list:
                    keys = _list_keys(schema, arm, user_id, exclude_seen)
                    res[3:] = rcache.redis_call(lambda r: r.mget(keys), [None, None])
            if cached_list and len(res) > 4:
                payload, fresh_payload = res[3], res[4]
    erased = erased_for(arm, tombstone_from_reply(schema, user_id, tombstone_reply))
    if erased:
        # Unknown to this model: no cached list (filled before the erasure), none written.
        payload, cached_list = None, False
    catalog = catalog_state(schema, catalog_token)

    # A re-scored list still current (the round trip read its marker): served as it is.
    fresh_hit = marker = None
    if (
        cached_list
        and not erased
        and isinstance(latest_event, bytes)
        and recent_is_new(latest_event, arm.cutoff)
    ):
        marker = fresh_marker(arm, latest_event)
        fresh_hit = fresh_cached(fresh_payload, marker)
    # Events since the version's training (none, without a read, for most shoppers).
    events = []
    claimed = True
    if arm.version_id is not None and not erased and fresh_hit is None:
        claim = None
        if marker is not None:
            claim = fresh_claim_command(schema, user_id, exclude_seen=exclude_seen, marker=marker)
        events, claimed = _events_since_training(schema, arm, user_id, latest_event, claim)
    loaded = None
    seen: frozenset[str] | set[str] = frozenset()
    fresh_exclude: set[str] = set()
    reasons: list | None = None
    if events:
        loaded = serving_model(schema, arm)
        if loaded is not None and exclude_seen:
            fresh_exclude = seen_since_training(events, seen_types(loaded))
    if fresh_hit is None and not claimed and events and loaded is not None:
        # Another request is re-scoring this list: its answer is this one's.
        fresh_hit = fresh_await(schema, user_id, exclude_seen=exclude_seen, marker=marker)
    if fresh_hit is not None:
        strategy, items, reasons, fresh_exclude = fresh_hit
    elif events and loaded is not None and arm.strategy == "model":
        strategy, items, reasons = fresh_compute(
            schema_name=schema,
            arm=arm,
            loaded=loaded,
            user_id=user_id,
            events=events,
            exclude=fresh_exclude,
            exclude_seen=exclude_seen,
            marker=marker,
        )
    elif payload is not None and not events:
        strategy, items, *stored = orjson.loads(payload)
        reasons = stored[0] if stored else None
    else:
        loaded = serving_model(schema, arm)
        if loaded is None:
            strategy, items = "popularity", db_list(schema, "popular")
            arm = Arm(None, None, "", arm_id=arm.arm_id, experiment_id=arm.experiment_id)
            if exclude_seen:
                seen = db_seen(user_id)
        elif erased:
            strategy, items, reasons, _ = _compute_user_list(
                schema, arm, loaded, ERASED_SHOPPER, exclude_seen, recent=db_recent(user_id)
            )
            if exclude_seen:
                seen = db_seen(user_id)
        else:
            strategy, items, reasons, known = _compute_user_list(
                schema, arm, loaded, user_id, exclude_seen
            )
            if arm.strategy == "trending" and exclude_seen:
                seen = set(loaded.model.seen_items(user_id))
            if cached_list:
                key = rcache.list_key(schema, arm.version_id, user_id, exclude_seen=exclude_seen)
                ttl = settings.RECS_CACHE_TTL_SECONDS if known else COLD_LIST_TTL_SECONDS
                blob = orjson.dumps([strategy, items, reasons])
                rcache.redis_call(lambda r: r.set(key, blob, ex=ttl), None)

    result = _filtered([items], catalog, filters, seen | fresh_exclude)
    if len(result) < filters.k:
        # Filters removed too much: top up from popularity (never what the shopper has seen).
        if loaded is None and arm.version_id is not None:
            loaded = serving_model(schema, arm)
        if loaded is not None:
            extra = loaded.order("popular")
            if exclude_seen and not seen:
                seen = db_seen(user_id) if erased else set(loaded.model.seen_items(user_id))
        else:
            extra = db_list(schema, "popular")
            if exclude_seen and not seen:
                seen = db_seen(user_id)
        result = _filtered([result, extra], catalog, filters, seen | fresh_exclude)
    ranked = (items, reasons) if reasons is not None else None
    served = Served(_new_id(), arm.label, strategy, result, ranked)
    if log:
        _log(schema, served, "user", user_id, arm)
    return served


def recommend_buy_again(*, user_id: str, filters: Filters, log: bool = True) -> Served:
    """Items the shopper keeps coming back to (repeat purchases; any repeat events in stores
    without purchases), most due first. Empty for shoppers without history."""
    schema = connection.schema_name
    state_token, catalog_token, erased_at = _tokens_and_tombstone(schema, user_id)
    arm = store_state(schema, state_token).default
    catalog = catalog_state(schema, catalog_token)
    # An erased shopper's history is what PostgreSQL holds since the erasure, never the model's.
    loaded = None if erased_for(arm, erased_at) else serving_model(schema, arm)
    if loaded is not None:
        items = list(loaded.model.buy_again(user_id, LIST_SIZE).items)
    else:
        arm = Arm(None, None, "")
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT item_id, count(*) AS n FROM catalog_event
                WHERE user_id = %s AND type IN ('purchase', 'add_to_cart', 'view')
                GROUP BY item_id HAVING count(*) >= 2
                ORDER BY n DESC, max("timestamp") DESC LIMIT %s
                """,
                [user_id, LIST_SIZE],
            )
            items = [(item, float(n)) for item, n in cursor.fetchall()]
    served = Served(_new_id(), arm.label, "buy_again", _filtered([items], catalog, filters))
    if log:
        _log(schema, served, "buy_again", user_id, arm)
    return served
