"""The request path of the recommendation endpoints (reads only; the cache fills are a side
effect of reading).

A shopper's list is one Redis MGET (the store's state token, its catalog token and the
precomputed top-100 of the version serving the shopper) plus filtering in memory against the
store's hidden / out-of-stock items and categories, which each process keeps per store and
reloads when the catalog token moves. The active version and running experiment are kept per
process too, reloaded when the state token moves (activation, rollback, experiment start or
stop) or after STATE_TTL_SECONDS.

A cache miss computes the list from the model (loaded once per process per store, bounded LRU)
and fills the cache. Redis down: the model answers directly. No model or an unreadable
artifact: popularity / trending from PostgreSQL. Degraded, never an error.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

import orjson
import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Q

from apps.catalog.models import Event, Item
from apps.core.erasure import tombstone_command, tombstone_from_reply
from apps.core.errors import ApplicationError
from apps.core.redis_batch import Pending, RedisBatch, execute_commands
from apps.recommendations import cache as rcache
from apps.recommendations.impressions import impression_log
from apps.recommendations.model_store import LoadedModel, models
from apps.recommendations.models import Experiment, ModelVersion

logger = logging.getLogger(__name__)

LIST_SIZE = 100  # cached list length, and the largest k served
STATE_TTL_SECONDS = 10.0
CATALOG_TTL_SECONDS = 30.0
FALLBACK_TTL_SECONDS = 60.0
COLD_LIST_TTL_SECONDS = 600
MAX_STORES = 512
MAX_CATEGORY_SETS = 64
NO_MODEL = "none"
# The id serving gives the model for an erased shopper: a control character, so never a real
# shopper id (the id rule), hence unknown to every model.
ERASED_SHOPPER = "\x00erased"

_UNSET = object()


# --- per-process store state -------------------------------------------------------------------
@dataclass(frozen=True)
class Arm:
    """What serves a shopper: a model version (or none) and a strategy of it."""

    version_id: int | None
    number: int | None
    artifact: str
    strategy: str = "model"  # model | trending | popularity
    arm_id: int | None = None
    experiment_id: int | None = None
    upper: int = 100  # exclusive upper bound of the arm's bucket range (0..99)
    # When the version's training started (epoch seconds): it may know shoppers erased later.
    trained_at: float = 0.0

    @property
    def label(self) -> str:
        return f"v{self.number}" if self.number is not None else NO_MODEL


@dataclass
class StoreState:
    token: object
    expires: float
    default: Arm
    arms: tuple[Arm, ...] = ()

    def arm_for(self, user_id: str) -> Arm:
        if not self.arms:
            return self.default
        bucket = experiment_bucket(self.arms[0].experiment_id or 0, user_id)
        for arm in self.arms:
            if bucket < arm.upper:
                return arm
        return self.arms[-1]


@dataclass
class CatalogState:
    token: object
    expires: float
    hidden: frozenset[str]
    out_of_stock: frozenset[str]
    categories: OrderedDict[str, frozenset[str]] = field(default_factory=OrderedDict)


@dataclass
class Fallback:
    expires: float
    items: list[tuple[str, float]]


_states: OrderedDict[str, StoreState] = OrderedDict()
_catalogs: OrderedDict[str, CatalogState] = OrderedDict()
_fallbacks: dict[tuple[str, str], Fallback] = {}
_lock = threading.Lock()


def experiment_bucket(experiment_id: int, user_id: str) -> int:
    """0..99, deterministic per (experiment, shopper) and independent across experiments."""
    digest = hashlib.blake2b(f"{experiment_id}:{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 100


def forget_store(schema_name: str) -> None:
    with _lock:
        _states.pop(schema_name, None)


def forget_catalog(schema_name: str) -> None:
    with _lock:
        _catalogs.pop(schema_name, None)


def forget_all() -> None:
    """Drop every per-process cache (tests, and after a bulk data change)."""
    with _lock:
        _states.clear()
        _catalogs.clear()
        _fallbacks.clear()
    models.forget()


def _remember(store: OrderedDict, schema_name: str, value: object) -> None:
    with _lock:
        store[schema_name] = value
        store.move_to_end(schema_name)
        while len(store) > MAX_STORES:
            store.popitem(last=False)


def _load_state(schema_name: str, token: object) -> StoreState:
    active = (
        ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE)
        .values_list("id", "number", "artifact_path", "created_at")
        .first()
    )
    default = Arm(*active[:3], trained_at=active[3].timestamp()) if active else Arm(None, None, "")
    arms: list[Arm] = []
    experiment = Experiment.objects.filter(status=Experiment.Status.RUNNING).first()
    if experiment is not None:
        upper = 0
        for arm in experiment.arms.select_related("model_version").order_by("position"):
            upper += arm.traffic_percent
            version = arm.model_version
            arms.append(
                Arm(
                    version_id=version.id if version else default.version_id,
                    number=version.number if version else default.number,
                    artifact=version.artifact_path if version else default.artifact,
                    strategy=arm.strategy,
                    arm_id=arm.id,
                    experiment_id=experiment.id,
                    upper=upper,
                    trained_at=version.created_at.timestamp() if version else default.trained_at,
                )
            )
    state = StoreState(token, time.monotonic() + STATE_TTL_SECONDS, default, tuple(arms))
    previous = _states.get(schema_name)
    if previous is None or previous.default != state.default:
        # A new model may know items (event stubs) hidden since the filters were loaded.
        forget_catalog(schema_name)
    _remember(_states, schema_name, state)
    return state


def _state(schema_name: str, token: object = _UNSET) -> StoreState:
    """The store's state; reloaded when `token` (from Redis) differs from the cached one, or
    when the cached one is older than STATE_TTL_SECONDS."""
    state = _states.get(schema_name)
    if state is not None:
        if token is _UNSET:
            if state.expires > time.monotonic():
                return state
            token = state.token
        elif token == state.token and state.expires > time.monotonic():
            return state
    try:
        return _load_state(schema_name, None if token is _UNSET else token)
    except DatabaseError:
        if state is None:
            raise
        logger.warning("recommendations: state reload failed, keeping the previous state")
        return state


def _load_catalog(schema_name: str, token: object) -> CatalogState:
    hidden, out_of_stock = [], []
    rows = Item.objects.filter(Q(is_hidden=True) | Q(in_stock=False)).values_list(
        "item_id", "is_hidden", "in_stock"
    )
    for item_id, is_hidden, in_stock in rows.iterator(chunk_size=10_000):
        if is_hidden:
            hidden.append(item_id)
        if not in_stock:
            out_of_stock.append(item_id)
    state = CatalogState(
        token, time.monotonic() + CATALOG_TTL_SECONDS, frozenset(hidden), frozenset(out_of_stock)
    )
    _remember(_catalogs, schema_name, state)
    return state


def _catalog(schema_name: str, token: object = _UNSET) -> CatalogState:
    state = _catalogs.get(schema_name)
    if state is not None:
        fresh = state.expires > time.monotonic()
        if (token is _UNSET and fresh) or (token == state.token and fresh):
            return state
        if token is _UNSET:
            token = state.token
    return _load_catalog(schema_name, None if token is _UNSET else token)


def _category_items(catalog: CatalogState, category: str) -> frozenset[str]:
    items = catalog.categories.get(category)
    if items is None:
        items = frozenset(
            Item.objects.filter(categories__contains=[category]).values_list("item_id", flat=True)
        )
        with _lock:
            catalog.categories[category] = items
            while len(catalog.categories) > MAX_CATEGORY_SETS:
                catalog.categories.popitem(last=False)
    return items


def _erased_for(arm: Arm, erased_at: float | None) -> bool:
    """The shopper was erased after `arm`'s version started training: its artifact may still
    hold their row, so they are unknown to it (apps/core/erasure.py)."""
    return erased_at is not None and arm.version_id is not None and arm.trained_at <= erased_at


def _tokens_and_tombstone(schema_name: str, user_id: str) -> tuple[object, object, float | None]:
    """(state token, catalog token, erasure time of the shopper) in one Redis round trip;
    the tokens are _UNSET and the tombstone comes from PostgreSQL when Redis is down."""
    res = rcache.redis_call(
        lambda r: execute_commands(
            [
                ("MGET", rcache.state_key(schema_name), rcache.catalog_key(schema_name)),
                tombstone_command(schema_name, user_id),
            ]
        ),
        None,
    )
    erased_at = tombstone_from_reply(schema_name, user_id, res[1] if res else None)
    return (res[0][0], res[0][1], erased_at) if res else (_UNSET, _UNSET, erased_at)


def _tokens(schema_name: str) -> tuple[object, object]:
    """(state token, catalog token) from Redis, or (_UNSET, _UNSET) when Redis is down."""
    res = rcache.redis_call(
        lambda r: r.mget([rcache.state_key(schema_name), rcache.catalog_key(schema_name)]), None
    )
    return (res[0], res[1]) if res is not None else (_UNSET, _UNSET)


# --- results -----------------------------------------------------------------------------------
@dataclass
class Served:
    recommendation_id: str
    model_version: str
    strategy: str
    items: list[tuple[str, float]]

    def as_dict(self) -> dict[str, object]:
        return {
            "recommendation_id": self.recommendation_id,
            "model_version": self.model_version,
            "strategy": self.strategy,
            "items": [{"item_id": item, "score": score} for item, score in self.items],
        }

    def json(self) -> bytes:
        return orjson.dumps(self.as_dict())


@dataclass
class Filters:
    k: int = 10
    category: str | None = None
    in_stock: bool = True


def _filtered(
    lists: list[list[tuple[str, float]]],
    catalog: CatalogState,
    filters: Filters,
    exclude: frozenset[str] | set[str] = frozenset(),
) -> list[tuple[str, float]]:
    """The first `k` items of `lists` (in order, no repeats) that pass the filters. Items of a
    later list are scored below the last kept one, so scores keep decreasing."""
    hidden = catalog.hidden
    oos = catalog.out_of_stock if filters.in_stock else frozenset()
    in_category = _category_items(catalog, filters.category) if filters.category else None
    out: list[tuple[str, float]] = []
    taken: set[str] = set()
    k = filters.k
    for n, items in enumerate(lists):
        floor = out[-1][1] if out else 0.0
        for item, score in items:
            if (
                item in hidden
                or item in oos
                or item in exclude
                or item in taken
                or (in_category is not None and item not in in_category)
            ):
                continue
            if n:
                floor -= 0.001
                score = floor
            out.append((item, round(float(score), 6)))
            taken.add(item)
            if len(out) >= k:
                return out
    return out


# --- fallbacks from PostgreSQL -----------------------------------------------------------------
_POPULAR_SQL = """
SELECT e.item_id, count(DISTINCT e.user_id) AS shoppers
FROM catalog_event e
WHERE e."timestamp" >= (SELECT max("timestamp") FROM catalog_event) - %s * interval '1 day'
GROUP BY e.item_id
ORDER BY shoppers DESC, e.item_id
LIMIT 1000
"""


def _db_list(schema_name: str, kind: str) -> list[tuple[str, float]]:
    """Most popular (90 days) or trending (7 days) items by distinct shoppers, relative to the
    store's newest event; cached per process for FALLBACK_TTL_SECONDS."""
    key = (schema_name, kind)
    cached = _fallbacks.get(key)
    if cached is not None and cached.expires > time.monotonic():
        return cached.items
    days = 7 if kind == "trending" else 90
    with connection.cursor() as cursor:
        cursor.execute(_POPULAR_SQL, [days])
        items = [(item, float(n)) for item, n in cursor.fetchall()]
    _fallbacks[key] = Fallback(time.monotonic() + FALLBACK_TTL_SECONDS, items)
    return items


def _db_seen(user_id: str) -> set[str]:
    return set(
        Event.objects.filter(user_id=user_id)
        .order_by("-timestamp")
        .values_list("item_id", flat=True)[:1000]
    )


def _db_recent(user_id: str, n: int = 5) -> list[str]:
    """The shopper's last `n` distinct items, oldest first (a session for cold shoppers)."""
    recent: list[str] = []
    rows = Event.objects.filter(user_id=user_id).order_by("-timestamp")
    for item in rows.values_list("item_id", flat=True)[:50]:
        if item not in recent:
            recent.append(item)
        if len(recent) >= n:
            break
    return list(reversed(recent))


def _model(schema_name: str, arm: Arm) -> LoadedModel | None:
    if arm.version_id is None:
        return None
    try:
        return models.get(schema_name, arm.version_id, arm.artifact)
    except (OSError, ValueError, RuntimeError, KeyError):
        logger.exception("recommendations: model v%s of %s unreadable", arm.number, schema_name)
        return None


def _new_id() -> str:
    return uuid.uuid4().hex


def _log(schema_name: str, served: Served, surface: str, user_id: str, arm: Arm | None) -> None:
    impression_log(
        schema_name=schema_name,
        recommendation_id=served.recommendation_id,
        surface=surface,
        user_id=user_id,
        model_version_number=arm.number
        if arm is not None and served.model_version != NO_MODEL
        else None,
        strategy=served.strategy,
        item_ids=[item for item, _ in served.items],
        experiment_id=arm.experiment_id if arm is not None else None,
        arm_id=arm.arm_id if arm is not None else None,
    )


# --- shopper lists -----------------------------------------------------------------------------
def _compute_user_list(
    schema_name: str,
    arm: Arm,
    loaded: LoadedModel,
    user_id: str,
    exclude_seen: bool,
    recent: list[str] | None = None,
) -> tuple[str, list[tuple[str, float]], bool]:
    """(strategy, top-100, shopper known to the model) computed from the model. `recent`: the
    session of a shopper the model must treat as unknown (read from PostgreSQL otherwise)."""
    model = loaded.model
    known = model.user_index.get(user_id) is not None
    if arm.strategy == "trending":
        return "trending", loaded.order("trending")[: LIST_SIZE * 2], known
    if arm.strategy == "popularity":
        recs = model.with_strategy("popularity").recommend_for_user(
            user_id, k=LIST_SIZE, exclude_seen=exclude_seen
        )
        return "popularity", list(recs.items), known
    if recent is None and not known:
        recent = _db_recent(user_id)
    recs = model.recommend_for_user(
        user_id, k=LIST_SIZE, exclude_seen=exclude_seen, recent_item_ids=recent
    )
    return recs.strategy, list(recs.items), known


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


def _shopper_keys(schema: str, arm: Arm, user_id: str, exclude_seen: bool) -> list[str]:
    keys = [rcache.state_key(schema), rcache.catalog_key(schema)]
    if arm.version_id is not None and arm.strategy == "model":
        keys.append(rcache.list_key(schema, arm.version_id, user_id, exclude_seen=exclude_seen))
    return keys


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
        state = _state(schema)
    except DatabaseError:
        return None
    arm = state.arm_for(user_id)
    keys = _shopper_keys(schema, arm, user_id, exclude_seen)
    return ShopperPrefetch(
        state, arm, batch.add(("MGET", *keys), tombstone_command(schema, user_id))
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
    Redis outage. `prefetch` (from `shopper_prefetch` with the same user_id and exclude_seen)
    replaces the Redis read."""
    schema = connection.schema_name
    if prefetch is not None:
        state, arm = prefetch.state, prefetch.arm
    else:
        state = _state(schema)
        arm = state.arm_for(user_id)
    cached_list = arm.version_id is not None and arm.strategy == "model"
    payload = None
    catalog_token: object = _UNSET
    tombstone_reply = None
    if prefetch is not None or rcache.redis_available():
        if prefetch is not None:
            replies = prefetch.values()
        else:
            keys = _shopper_keys(schema, arm, user_id, exclude_seen)
            commands = [("MGET", *keys), tombstone_command(schema, user_id)]
            replies = rcache.redis_call(lambda r: execute_commands(commands), None)
        res, tombstone_reply = replies if replies is not None else (None, None)
        if res is not None:
            catalog_token = res[1]
            if res[0] != state.token:
                previous = arm
                state = _state(schema, res[0])
                arm = state.arm_for(user_id)
                cached_list = arm.version_id is not None and arm.strategy == "model"
                if arm != previous and cached_list:
                    key = rcache.list_key(
                        schema, arm.version_id, user_id, exclude_seen=exclude_seen
                    )
                    res[2:] = [rcache.redis_call(lambda r: r.get(key), None)]
            payload = res[2] if cached_list and len(res) > 2 else None
    erased = _erased_for(arm, tombstone_from_reply(schema, user_id, tombstone_reply))
    if erased:
        # Unknown to this model: no cached list (filled before the erasure), none written.
        payload, cached_list = None, False
    catalog = _catalog(schema, catalog_token)

    loaded = None
    seen: frozenset[str] | set[str] = frozenset()
    if payload is not None:
        strategy, items = orjson.loads(payload)
    else:
        loaded = _model(schema, arm)
        if loaded is None:
            strategy, items = "popularity", _db_list(schema, "popular")
            arm = Arm(None, None, "", arm_id=arm.arm_id, experiment_id=arm.experiment_id)
            if exclude_seen:
                seen = _db_seen(user_id)
        elif erased:
            strategy, items, _ = _compute_user_list(
                schema, arm, loaded, ERASED_SHOPPER, exclude_seen, recent=_db_recent(user_id)
            )
            if exclude_seen:
                seen = _db_seen(user_id)
        else:
            strategy, items, known = _compute_user_list(schema, arm, loaded, user_id, exclude_seen)
            if arm.strategy == "trending" and exclude_seen:
                seen = set(loaded.model.seen_items(user_id))
            if cached_list:
                key = rcache.list_key(schema, arm.version_id, user_id, exclude_seen=exclude_seen)
                ttl = settings.RECS_CACHE_TTL_SECONDS if known else COLD_LIST_TTL_SECONDS
                blob = orjson.dumps([strategy, items])
                rcache.redis_call(lambda r: r.set(key, blob, ex=ttl), None)

    result = _filtered([items], catalog, filters, seen)
    if len(result) < filters.k:
        # Filters removed too much: top up from popularity (never what the shopper has seen).
        if loaded is None and arm.version_id is not None:
            loaded = _model(schema, arm)
        if loaded is not None:
            extra = loaded.order("popular")
            if exclude_seen and not seen:
                seen = _db_seen(user_id) if erased else set(loaded.model.seen_items(user_id))
        else:
            extra = _db_list(schema, "popular")
            if exclude_seen and not seen:
                seen = _db_seen(user_id)
        result = _filtered([result, extra], catalog, filters, seen)
    served = Served(_new_id(), arm.label, strategy, result)
    if log:
        _log(schema, served, "user", user_id, arm)
    return served


def recommend_buy_again(*, user_id: str, filters: Filters, log: bool = True) -> Served:
    """Items the shopper keeps coming back to (repeat purchases; any repeat events in stores
    without purchases), most due first. Empty for shoppers without history."""
    schema = connection.schema_name
    state_token, catalog_token, erased_at = _tokens_and_tombstone(schema, user_id)
    arm = _state(schema, state_token).default
    catalog = _catalog(schema, catalog_token)
    # An erased shopper's history is what PostgreSQL holds since the erasure, never the model's.
    loaded = None if _erased_for(arm, erased_at) else _model(schema, arm)
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


def _item_or_404(item_id: str) -> list[str]:
    categories = (
        Item.objects.filter(item_id=item_id, is_hidden=False)
        .values_list("categories", flat=True)
        .first()
    )
    if categories is None:
        raise ApplicationError(
            f"No item {item_id!r} in this store's catalog.", code="not_found", status_code=404
        )
    return categories


def recommend_for_item(*, item_id: str, kind: str, filters: Filters, log: bool = True) -> Served:
    """`similar` or `bought_together` items of a catalog item; topped up with popular items
    of the same categories. Raises ApplicationError 404 for an item not in the catalog."""
    schema = connection.schema_name
    categories = _item_or_404(item_id)
    state_token, catalog_token = _tokens(schema)
    arm = _state(schema, state_token).default
    catalog = _catalog(schema, catalog_token)
    loaded = _model(schema, arm)
    items: list[tuple[str, float]] = []
    strategy = "category"
    if loaded is not None:
        recs = (
            loaded.model.similar_items(item_id, LIST_SIZE)
            if kind == "similar"
            else loaded.model.bought_together(item_id, LIST_SIZE)
        )
        if recs.items:
            items, strategy = list(recs.items), recs.strategy
        popular = loaded.order("popular")
    else:
        arm = Arm(None, None, "")
        popular = _db_list(schema, "popular")
    lists = [items]
    if categories:
        same: set[str] = set()
        for category in categories[:5]:
            same |= _category_items(catalog, category)
        lists.append([(item, score) for item, score in popular if item in same])
    result = _filtered(lists, catalog, filters, {item_id})
    if not items and result:
        strategy = "category"
    served = Served(_new_id(), arm.label, strategy, result)
    if log:
        _log(schema, served, kind, "", arm)
    return served


def recommend_trending(*, filters: Filters, log: bool = True) -> Served:
    """Items by recent, time-decayed popularity; topped up with all-time popularity."""
    schema = connection.schema_name
    state_token, catalog_token = _tokens(schema)
    arm = _state(schema, state_token).default
    catalog = _catalog(schema, catalog_token)
    loaded = _model(schema, arm)
    if loaded is not None:
        lists = [loaded.order("trending"), loaded.order("popular")]
    else:
        arm = Arm(None, None, "")
        lists = [_db_list(schema, "trending"), _db_list(schema, "popular")]
    served = Served(_new_id(), arm.label, "trending", _filtered(lists, catalog, filters))
    if log:
        _log(schema, served, "trending", "", arm)
    return served
