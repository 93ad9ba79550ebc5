"""Fitting every candidate generator and the serving arrays into a :class:`RecommenderModel`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp

from ml.candidates.als import AlsParams, fit_als, item_neighbors, normalized
from ml.candidates.buy_again import buy_again_scores, cell_intervals, item_intervals
from ml.candidates.content import content_embeddings, item_texts
from ml.candidates.cooccurrence import basket_ids, cooccurrence_matrix
from ml.candidates.popularity import TimeBins, trending_scores
from ml.candidates.segments import fit_segments
from ml.data import (
    Catalog,
    EventWeights,
    Interactions,
    UserItemTable,
    build_index,
    build_user_item_table,
    event_weights_array,
)
from ml.model.artifact import RecommenderModel
from ml.model.config import MAX_CATS, MAX_NEIGHBOR_ITEMS, NEIGHBORS
from ml.model.orders import order_cells


@dataclass
class FitOptions:
    """Everything :func:`fit_model` needs besides data."""

    als: AlsParams | None = field(default_factory=AlsParams)
    weights: EventWeights = field(default_factory=EventWeights)
    half_life_days: float | None = None
    trending_half_life_days: float = 7.0
    cooccurrence_measure: str = "jaccard"
    cooccurrence_min_support: int = 2
    content_dim: int = 64
    random_state: int = 0
    num_threads: int = 0


def fit_model(
    interactions: Interactions,
    catalog: Catalog | None,
    options: FitOptions,
    *,
    reference_ts: int | None = None,
    precomputed_factors: tuple[np.ndarray, np.ndarray] | None = None,
    timings: dict[str, float] | None = None,
) -> RecommenderModel:
    """Fit every candidate generator and the serving arrays on ``interactions``.

    Strategy is ``"als"`` when ALS was fitted (``options.als`` not None and there are events),
    ``"popularity"`` otherwise; attach a ranker with :func:`attach_ranker`. ``reference_ts``
    ("now" for recency features; default: the latest event) must not precede the data.
    ``precomputed_factors`` (user, item) skips the ALS fit when they were fitted on exactly
    this data and index (the search already did). ``timings`` receives seconds per step.
    """
    timings = timings if timings is not None else {}
    t0 = time.perf_counter()
    catalog = catalog if catalog is not None else Catalog.empty()
    user_index, item_index = build_index(interactions, catalog)
    n_users, n_items = len(user_index), len(item_index)
    ts = interactions.timestamps
    ref = int(reference_ts if reference_ts is not None else ts.max(initial=0))
    is_purchase = interactions.type_mask("purchase")
    has_purchases = bool(is_purchase.any())
    repeat_event = "purchase" if has_purchases else None
    table = build_user_item_table(
        interactions,
        user_index,
        item_index,
        options.weights,
        reference_ts=ref,
        half_life_days=options.half_life_days,
        repeat_event=repeat_event,
    )
    # int32 positions (every consumer below widens before combining them into keys).
    u_ev = user_index.lookup_column(interactions, "user_ids", np.int32)
    i_ev = item_index.lookup_column(interactions, "item_ids", np.int32)
    w_ev = event_weights_array(interactions, options.weights)

    a: dict[str, np.ndarray] = {"user_ids": user_index.ids, "item_ids": item_index.ids}
    a["ui_indptr"], a["ui_indices"] = table.indptr, table.indices
    table.data["interval"] = cell_intervals(table)
    item_iv = item_intervals(table, n_items)
    table.data["buy_again"] = buy_again_scores(table, item_iv, ref)
    order_codes, order_vocab = interactions.codes("order_ids")
    in_order = interactions.order_mask()
    table.data.update(
        order_cells(
            table, u_ev[in_order], i_ev[in_order], ts[in_order], order_vocab[order_codes[in_order]]
        )
    )
    for name, values in table.data.items():
        a["ui_" + name] = values
    a["item_interval"] = item_iv

    # Item statistics.
    # Distinct shoppers per item are the table's cells per column (what popularity_scores
    # counts with a sort of every event, seconds at millions of events).
    a["n_users_item"] = np.bincount(table.indices, minlength=n_items).astype(np.float64)
    events_per_item = np.bincount(i_ev, minlength=n_items).astype(np.float64)
    a["popularity"] = (
        a["n_users_item"] + events_per_item / (events_per_item.max(initial=0.0) + 1.0)
        if len(i_ev)
        else np.zeros(n_items)
    )
    a["trending"] = trending_scores(
        i_ev, ts, w_ev, n_items, reference_ts=ref, half_life_days=options.trending_half_life_days
    )
    first_seen = np.full(n_items, np.inf)
    np.minimum.at(first_seen, i_ev, ts.astype(np.float64))
    cat_pos = item_index.lookup(catalog.item_ids)
    created = np.full(n_items, np.inf)
    if len(catalog):
        c_created = catalog.created_at.astype(np.float64)
        created[cat_pos] = np.where(c_created > 0, c_created, np.inf)
    first = np.minimum(first_seen, created)
    a["item_first_ts"] = np.where(np.isfinite(first), first, float(ref))
    price = np.full(n_items, np.nan)
    if len(catalog):
        price[cat_pos] = catalog.prices
    a["item_price"] = price
    repeated_cells = (
        table.data["count"] >= 2 if repeat_event is None else table.data["repeat_count"] >= 2
    )
    rep_items = np.bincount(table.indices[repeated_cells], minlength=n_items)
    a["item_repeat_rate"] = rep_items / np.maximum(a["n_users_item"], 1.0)
    bins = TimeBins.build(i_ev, ts, n_items)
    a["bins_cum"], a["bins_total"] = bins.cum, bins.total
    a["bin_top"] = bins.top_items_per_bin(30, 20)
    timings["stats"] = time.perf_counter() - t0

    # Per-shopper statistics are not stored: they are derived from the cells as of each
    # prediction's time (ml.model.state.cell_state), in training and in serving alike.

    # Categories.
    cat_names = sorted({c for cats in catalog.categories for c in cats})
    cat_of = {c: j for j, c in enumerate(cat_names)}
    item_cats = np.full((n_items, MAX_CATS), -1, dtype=np.int32)
    for pos, cats in zip(cat_pos.tolist(), catalog.categories, strict=True):
        uniq = list(dict.fromkeys(cats))[:MAX_CATS]
        item_cats[pos, : len(uniq)] = [cat_of[c] for c in uniq]
    a["categories"] = np.array(cat_names, dtype=str) if cat_names else np.zeros(0, dtype="<U1")
    a["item_cats"] = item_cats
    a["cat_share"] = _category_shares(table, item_cats, len(cat_names))

    # Content.
    t1 = time.perf_counter()
    emb = None
    if len(catalog):
        titles = [""] * n_items
        descs = [""] * n_items
        cats_all: list[list[str]] = [[] for _ in range(n_items)]
        for pos, title, desc, cats in zip(
            cat_pos.tolist(), catalog.titles, catalog.descriptions, catalog.categories, strict=True
        ):
            titles[pos], descs[pos], cats_all[pos] = title, desc, list(cats)
        emb = content_embeddings(
            item_texts(titles, descs, cats_all),
            dim=options.content_dim,
            random_state=options.random_state,
        )
    a["content"] = emb if emb is not None else np.zeros((0, 0), np.float32)
    timings["content"] = time.perf_counter() - t1

    # Bought together: purchases when the store has any, else any event; baskets are orders
    # where the purchases name one, time-window sessions otherwise.
    t1 = time.perf_counter()
    sel = is_purchase if has_purchases else np.ones(len(ts), bool)
    basket, order = basket_ids(
        u_ev[sel], ts[sel], order_vocab[np.where(in_order, order_codes, 0)[sel]]
    )
    cooc = cooccurrence_matrix(
        basket,
        i_ev[sel][order],
        n_items,
        measure=options.cooccurrence_measure,
        min_support=options.cooccurrence_min_support,
    )
    a["cooc_indptr"], a["cooc_indices"], a["cooc_data"] = cooc.indptr, cooc.indices, cooc.data
    a["cooc_top"] = _csr_top(cooc, NEIGHBORS)
    timings["cooccurrence"] = time.perf_counter() - t1

    # ALS, neighbours, segments.
    t1 = time.perf_counter()
    fitted = options.als is not None and table.nnz > 0
    if fitted and precomputed_factors is not None:
        user_f, item_f = precomputed_factors
    elif fitted:
        user_f, item_f = fit_als(
            table.csr("weight"),
            options.als,
            random_state=options.random_state,
            num_threads=options.num_threads,
        )
    else:
        user_f = np.zeros((n_users, 0), np.float32)
        item_f = np.zeros((0, 0), np.float32)
    a["user_factors"], a["item_factors"] = user_f, item_f
    timings["als"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    if fitted:
        usable = a["n_users_item"] >= 1
        if usable.sum() > MAX_NEIGHBOR_ITEMS:
            usable &= a["popularity"] >= np.sort(a["popularity"])[-MAX_NEIGHBOR_ITEMS]
        nbr, _ = item_neighbors(normalized(item_f), NEIGHBORS, usable=usable)
        a["nbr_ids"] = nbr
        centers, assign, seg_items = fit_segments(
            normalized(user_f), table.csr("count"), random_state=options.random_state
        )
    else:
        a["nbr_ids"] = np.zeros((n_items, 0), np.int32)
        centers = np.zeros((0, 0), np.float32)
        assign = np.full(n_users, -1, np.int32)
        seg_items = np.zeros((0, 100), np.int32)
    a["segment_centers"], a["user_segment"], a["segment_items"] = centers, assign, seg_items
    timings["neighbors_segments"] = time.perf_counter() - t1

    meta = {
        "strategy": "als" if fitted else "popularity",
        "reference_ts": ref,
        "bins_origin": bins.origin,
        "bins_width": bins.width,
        "repeat_event": repeat_event,
        "als_params": options.als.to_dict() if options.als is not None else None,
        "weights": options.weights.to_dict(),
        "half_life_days": options.half_life_days,
        "rating_range": _rating_range(interactions),
        "repeat_store": False,
    }
    # The model builds its own id dictionaries: free these (a dict entry per shopper) first.
    del user_index, item_index, table
    return RecommenderModel(arrays=a, meta=meta)


def attach_ranker(model: RecommenderModel, booster: lgb.Booster) -> RecommenderModel:
    """The model with ``booster`` as re-ranker and strategy ``"als+rerank"``."""
    model.booster = booster
    model.meta["strategy"] = "als+rerank"
    return model


def _rating_range(interactions: Interactions) -> list[float] | None:
    """[lowest, highest] rating value seen (how rating weights are scaled), None without."""
    vals = interactions.values[interactions.type_mask("rating")]
    vals = vals[~np.isnan(vals)]
    return [float(vals.min()), float(vals.max())] if len(vals) else None


def _csr_top(m: sp.csr_matrix, n: int) -> np.ndarray:
    """(rows, n) column indices of each row's largest values, -1 padded."""
    out = np.full((m.shape[0], n), -1, dtype=np.int32)
    if m.nnz == 0:
        return out
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, rows))
    r = rows[order]
    counts = np.diff(m.indptr)
    rank = np.arange(len(r)) - (np.cumsum(counts) - counts)[r]
    take = rank < n
    out[r[take], rank[take]] = m.indices[order][take]
    return out


def _category_shares(table: UserItemTable, item_cats: np.ndarray, n_cats: int) -> np.ndarray:
    """Each category's share of the store's (shopper, item, category) triples, so features can
    say "more than most shoppers do"."""
    if n_cats == 0:
        return np.zeros(0)
    cats = item_cats[table.indices]
    cats = cats[cats >= 0].astype(np.int64)
    glob = np.bincount(cats, minlength=n_cats).astype(np.float64)
    return glob / max(glob.sum(), 1.0)
