"""What each serving process keeps per store: the active version and running experiment (the
arm serving each shopper), the catalog's hidden / out-of-stock items and category sets, the
PostgreSQL fallback lists and the loaded models; reloaded when the store's Redis tokens move
or after their TTL. Also the one-round-trip read of those tokens (and a shopper's tombstone)."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from django.db import DatabaseError
from django.db.models import Q

from apps.catalog.models import Item
from apps.core.erasure import tombstone_command, tombstone_from_reply
from apps.core.redis_batch import execute_commands
from apps.recommendations import cache as rcache
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
    # The version's training data cut-off (epoch seconds; its window_end, else when training
    # started): a shopper's events after it are new to the model (serving/fresh.py).
    cutoff: float = 0.0

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


def _cutoff(created_at, window_end) -> float:
    return (window_end or created_at).timestamp()


def _load_state(schema_name: str, token: object) -> StoreState:
    active = (
        ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE)
        .values_list("id", "number", "artifact_path", "created_at", "window_end")
        .first()
    )
    default = (
        Arm(*active[:3], trained_at=active[3].timestamp(), cutoff=_cutoff(active[3], active[4]))
        if active
        else Arm(None, None, "")
    )
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
                    cutoff=_cutoff(version.created_at, version.window_end)
                    if version
                    else default.cutoff,
                )
            )
    state = StoreState(token, time.monotonic() + STATE_TTL_SECONDS, default, tuple(arms))
    previous = _states.get(schema_name)
    if previous is None or previous.default != state.default:
        # A new model may know items (event stubs) hidden since the filters were loaded.
        forget_catalog(schema_name)
    _remember(_states, schema_name, state)
    return state


def store_state(schema_name: str, token: object = _UNSET) -> StoreState:
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


def catalog_state(schema_name: str, token: object = _UNSET) -> CatalogState:
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


def erased_for(arm: Arm, erased_at: float | None) -> bool:
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


def serving_model(schema_name: str, arm: Arm) -> LoadedModel | None:
    if arm.version_id is None:
        return None
    try:
        return models.get(schema_name, arm.version_id, arm.artifact)
    except (OSError, ValueError, RuntimeError, KeyError):
        logger.exception("recommendations: model v%s of %s unreadable", arm.number, schema_name)
        return None
