"""Reading a store's data for training (fast paths into the ml engine's containers), the
activation rule, and progress reports to the store's dashboard group."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import time
from array import array
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.db.models import Max

from apps.catalog.models import Event, Item
from apps.core.db.copy import raw_copy
from apps.core.live import store_push
from apps.recommendations.model_store import artifact_dir
from apps.recommendations.models import ModelVersion
from ml.comparison import compare_on_recent_window
from ml.data import EVENT_TYPES, Catalog, Interactions, interactions_export
from ml.model import RecommenderModel
from ml.pipeline import TrainingConfig

logger = logging.getLogger(__name__)

K = 10
METRIC = f"ndcg@{K}"

# Events of an erased shopper that arrived before the erasure never reach a model, even those a
# batch committed after the erasure's DELETE (apps/core/erasure.py); later ones are a new history.
# Anonymous events (no user_id) count as the shopper's their session is linked to
# (catalog.SessionLink), and are left out while the session is linked to nobody.
_EVENTS_COPY = (
    # The event type arrives as its index in ml's EVENT_TYPES (types ml does not learn from,
    # refunds and dismissals, are left out in SQL), so no Python string is made for it.
    "COPY (SELECT coalesce(e.user_id, l.user_id), e.item_id, "
    "array_position({types}, e.type::text) - 1, coalesce(e.value, 'NaN'), "
    'floor(extract(epoch FROM e."timestamp"))::bigint, '
    "nullif(e.order_id, '') FROM catalog_event e "
    "LEFT JOIN catalog_sessionlink l ON e.user_id IS NULL AND l.session_id = e.session_id "
    'WHERE e."timestamp" >= {since} AND e."timestamp" <= {until} AND e.type = ANY({types}) '
    "AND coalesce(e.user_id, l.user_id) IS NOT NULL "
    # A refunded order line teaches nothing: the purchase is left out (README, "One purchase
    # rule"); the refund event itself is not an ml event type (the type filter above).
    "AND NOT (e.type = 'purchase' AND e.order_id IS NOT NULL AND EXISTS (SELECT 1 FROM "
    "catalog_event r WHERE r.order_id = e.order_id AND r.item_id = e.item_id "
    "AND r.type = 'refund')) "
    "AND NOT EXISTS (SELECT 1 FROM public.core_shoppererasure x "
    "WHERE x.schema_name = current_schema() AND x.user_id = coalesce(e.user_id, l.user_id) "
    "AND e.received_at <= x.erased_at)) TO STDOUT"
)


def training_window() -> tuple[datetime | None, datetime | None]:
    """(start, end) of the events a training reads: RECS_TRAINING_WINDOW_DAYS before the
    store's newest event. (None, None) for a store without events."""
    newest = Event.objects.aggregate(newest=Max("timestamp"))["newest"]
    if newest is None:
        return None, None
    return newest - timedelta(days=settings.RECS_TRAINING_WINDOW_DAYS), newest


def interactions_read(*, since: datetime, until: datetime) -> Interactions:
    """Every event of the current store in [since, until] as ml Interactions (purchases with
    their order ids), streamed with COPY (no model instances; about a million rows per second).

    Ids are coded while streaming: each distinct shopper, item and order id is kept once (a
    dict), events become int32 codes, an int8 type, a float32 value and an int64 time in
    growing C arrays, about 25 bytes an event (a Python string per cell would cost hundreds).
    """
    users: dict[str, int] = {}
    items: dict[str, int] = {}
    orders: dict[str, int] = {"": 0}
    user_codes, item_codes, order_codes = array("i"), array("i"), array("i")
    type_codes, values, stamps = array("b"), array("f"), array("q")
    types = "ARRAY[" + ",".join(f"'{t}'" for t in EVENT_TYPES) + "]"
    with connection.cursor() as cursor:
        # COPY takes no bind parameters; both bounds are datetimes we computed, not input.
        query = _EVENTS_COPY.format(
            since=f"'{since.isoformat()}'::timestamptz",
            until=f"'{until.isoformat()}'::timestamptz",
            types=types,
        )
        with raw_copy(cursor, query, ["text", "text", "int4", "float8", "int8", "text"]) as copy:
            # Millions of rows: bound methods in locals, one dict probe per id.
            user_get, item_get, order_get = users.get, items.get, orders.get
            add_user, add_item, add_order = user_codes.append, item_codes.append, order_codes.append
            add_type, add_value, add_stamp = type_codes.append, values.append, stamps.append
            for user_id, item_id, kind, value, ts, order_id in copy.rows():
                code = user_get(user_id)
                if code is None:
                    code = users[user_id] = len(users)
                add_user(code)
                code = item_get(item_id)
                if code is None:
                    code = items[item_id] = len(items)
                add_item(code)
                add_type(kind)
                add_value(value)
                add_stamp(ts)
                if order_id is None:
                    add_order(0)
                else:
                    code = order_get(order_id)
                    if code is None:
                        code = orders[order_id] = len(orders)
                    add_order(code)
    interactions = Interactions.from_codes(
        user_codes=np.frombuffer(user_codes, dtype=np.int32),
        user_vocab=_vocabulary(users),
        item_codes=np.frombuffer(item_codes, dtype=np.int32),
        item_vocab=_vocabulary(items),
        type_codes=np.frombuffer(type_codes, dtype=np.int8),
        values=np.frombuffer(values, dtype=np.float32),
        timestamps=np.frombuffer(stamps, dtype=np.int64),
        order_codes=np.frombuffer(order_codes, dtype=np.int32),
        order_vocab=_vocabulary(orders),
    )
    _release_freed_memory()
    return interactions


def _release_freed_memory() -> None:
    """Hand the allocator's freed pages back to the system (glibc's malloc_trim): parsing
    millions of rows leaves hundreds of MB freed but held by the process, under every later
    stage of the training's peak. Elsewhere (no glibc) a no-op."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def training_data_export(*, out: Path) -> dict:
    """Write the current store's training events (the window a training would read) to the
    folder `out` as ml.data.export lays it out; returns its manifest (counts, window, store).
    Reads only; raises OSError when the folder cannot be written."""
    since, until = training_window()
    interactions = interactions_read(since=since, until=until) if since else Interactions.empty()
    return interactions_export(
        interactions,
        out,
        meta={
            "store": connection.schema_name,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        },
    )


def _vocabulary(codes: dict[str, int]) -> np.ndarray:
    """The ids of a code dict in code order (dicts keep insertion order: code i is key i)."""
    vocab = np.empty(len(codes), dtype=object)
    vocab[:] = list(codes)
    return vocab


def catalog_read() -> Catalog:
    """The store's items (hidden ones too: their history still teaches the model; serving
    filters them out)."""
    rows = Item.objects.values_list(
        "item_id", "title", "description", "categories", "price", "created_at", "in_stock"
    )
    return Catalog.from_rows(
        (
            item_id,
            title,
            description,
            categories,
            None if price is None else float(price),
            int(created_at.timestamp()) if created_at else None,
            in_stock,
        )
        for item_id, title, description, categories, price, created_at, in_stock in rows.iterator(
            chunk_size=20_000
        )
    )


def recent_window_compare(
    *,
    candidate: RecommenderModel,
    interactions: Interactions,
    catalog: Catalog,
    config: TrainingConfig,
    active: ModelVersion | None,
) -> tuple[dict | None, str]:
    """Score the candidate and the active model on the same recent window (ml.comparison:
    the candidate's held-out events after the active model's training window, which the active
    model never saw). Returns (figures for `metrics["recent_window"]`, "") or (None, why not):
    no active model, an artifact this engine cannot read or score, or too few shoppers in the
    window yet. Reads the active artifact from storage; writes nothing."""
    if active is None:
        return None, ""
    if not active.artifact_path or active.window_end is None:
        return None, f"v{active.number} has no artifact to score"
    try:
        active_model = RecommenderModel.load(artifact_dir(active.artifact_path))
        comparison = compare_on_recent_window(
            interactions,
            catalog,
            candidate=candidate,
            active=active_model,
            active_until=int(active.window_end.timestamp()),
            config=config,
        )
    except (OSError, ValueError, KeyError, IndexError):
        # An artifact an older engine wrote: serving cannot use it either (selectors.
        # model_version_active_readable); the stored figures decide.
        logger.warning("active v%s could not be scored on the recent window", active.number)
        return None, f"v{active.number} could not be read by this engine"
    if comparison is None:
        return None, f"too few shoppers with events after v{active.number}'s training"
    return {
        "active_version": active.number,
        "since": datetime.fromtimestamp(comparison.since, tz=UTC).isoformat(),
        "shoppers": comparison.shoppers,
        "events": comparison.events,
        "candidate": comparison.candidate,
        "active": comparison.active,
    }, ""


def activation_decision(
    metrics: dict,
    *,
    active_ndcg: float | None,
    tolerance: float,
    active_number: int | None = None,
) -> tuple[bool, str]:
    """(activate?, why). A model is activated when its held-out NDCG@10 beats the popularity
    baseline and is not worse than the active model's by more than `tolerance` (absolute).

    Against the active model, `metrics["recent_window"]` decides when it scored that model
    (`active_number`) on the same recent window as the candidate; otherwise (no window yet, an
    unreadable artifact) the active model's NDCG from its own training, `active_ndcg`."""
    final = metrics.get("final") or {}
    ndcg = final.get(METRIC)
    baseline = (metrics.get("popularity") or {}).get(METRIC)
    if final.get("strategy") == "popularity" or ndcg is None or baseline is None:
        reason = final.get("reason") or "not enough data to evaluate"
        return False, f"Not activated: the model does not beat popularity ({reason})."
    if ndcg <= baseline:
        return False, (
            f"Not activated: {METRIC} {ndcg:.4f} does not beat the popularity baseline "
            f"{baseline:.4f}."
        )
    window = metrics.get("recent_window")
    if window and active_number is not None and window.get("active_version") == active_number:
        mine, theirs = window["candidate"][METRIC], window["active"][METRIC]
        where = (
            f"on the recent window ({window['shoppers']} shoppers' events after "
            f"v{active_number}'s training)"
        )
        if mine < theirs - tolerance:
            return False, (
                f"Not activated: {where} {METRIC} {mine:.4f} is worse than "
                f"v{active_number}'s {theirs:.4f} by more than {tolerance:g}."
            )
        return True, (
            f"{METRIC} {ndcg:.4f} beats popularity {baseline:.4f}; {where} {mine:.4f} "
            f"against v{active_number}'s {theirs:.4f}."
        )
    if active_ndcg is not None and ndcg < active_ndcg - tolerance:
        return False, (
            f"Not activated: {METRIC} {ndcg:.4f} is worse than the active model's "
            f"{active_ndcg:.4f} by more than {tolerance:g}{_why_no_window(metrics)}."
        )
    if active_ndcg is not None:
        return True, (
            f"{METRIC} {ndcg:.4f} beats popularity {baseline:.4f} and the active model's "
            f"{active_ndcg:.4f}{_why_no_window(metrics)}."
        )
    return True, f"{METRIC} {ndcg:.4f} beats popularity {baseline:.4f}."


def _why_no_window(metrics: dict) -> str:
    why = metrics.get("recent_window_skipped")
    return f" (compared on each model's own held-out events: {why})" if why else ""


class ProgressPublisher:
    """Pushes `training.progress` to the store's group: on every new stage and at least every
    5 percent, never more than 4 times a second. A push failure never fails the training."""

    def __init__(self, schema_name: str, version_id: int, number: int) -> None:
        self.schema_name = schema_name
        self.version_id = version_id
        self.number = number
        self.stage = None
        self.percent = -100
        self.sent_at = 0.0
        self.layer = get_channel_layer()

    def __call__(self, stage: str, percent: int) -> None:
        percent = int(max(0, min(100, percent)))
        now = time.monotonic()
        new_stage = stage != self.stage
        if not new_stage and (percent - self.percent < 5 or now - self.sent_at < 0.25):
            return
        self.stage, self.percent, self.sent_at = stage, percent, now
        self.send(
            {
                "type": "training.progress",
                "model_version": self.version_id,
                "number": self.number,
                "stage": stage,
                "percent": percent,
            }
        )

    def send(self, payload: dict) -> None:
        store_push(schema_name=self.schema_name, payload=payload, layer=self.layer)
