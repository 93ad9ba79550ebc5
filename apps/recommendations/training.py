"""Reading a store's data for training (fast paths into the ml engine's containers), the
activation rule, and progress reports to the store's dashboard group."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.db.models import Max

from apps.catalog.models import Event, Item
from apps.core.live import store_push
from apps.recommendations.model_store import artifact_dir
from apps.recommendations.models import ModelVersion
from ml.comparison import compare_on_recent_window
from ml.data import EVENT_TYPES, Catalog, Interactions
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
    "COPY (SELECT coalesce(e.user_id, l.user_id), e.item_id, e.type, e.value, "
    'floor(extract(epoch FROM e."timestamp"))::bigint, e.order_id FROM catalog_event e '
    "LEFT JOIN catalog_sessionlink l ON e.user_id IS NULL AND l.session_id = e.session_id "
    'WHERE e."timestamp" >= {since} AND e."timestamp" <= {until} '
    "AND coalesce(e.user_id, l.user_id) IS NOT NULL "
    # A refunded order line teaches nothing: the purchase is left out (README, "One purchase
    # rule"); the refund event itself is not an ml event type and is skipped below.
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
    their order ids), streamed with COPY (no model instances; about a million rows per second)."""
    users: list[str] = []
    items: list[str] = []
    types: list[str] = []
    values: list[float] = []
    stamps: list[int] = []
    orders: list[str] = []
    known = set(EVENT_TYPES)
    with connection.cursor() as cursor:
        # COPY takes no bind parameters; both bounds are datetimes we computed, not input.
        query = _EVENTS_COPY.format(
            since=f"'{since.isoformat()}'::timestamptz", until=f"'{until.isoformat()}'::timestamptz"
        )
        with cursor.cursor.copy(query) as copy:
            copy.set_types(["text", "text", "text", "float8", "int8", "text"])
            nan = float("nan")
            for user_id, item_id, kind, value, ts, order_id in copy.rows():
                if kind not in known:
                    continue
                users.append(user_id)
                items.append(item_id)
                types.append(kind)
                values.append(nan if value is None else value)
                stamps.append(ts)
                orders.append(order_id or "")
    return Interactions(
        user_ids=np.array(users, dtype=object),
        item_ids=np.array(items, dtype=object),
        event_types=np.array(types, dtype=object),
        values=np.array(values, dtype=np.float64),
        timestamps=np.array(stamps, dtype=np.int64),
        order_ids=np.array(orders, dtype=object),
    )


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
