"""The re-ranker's features: one pure function of a fitted model's arrays and a candidate
matrix, used alike when the ranker is trained and when it serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ml.data import DAY
from ml.model.orders import last_orders_share
from ml.model.state import ShopperState, stored_state
from ml.sparse_utils import csr_gather, csr_positions, take_at

if TYPE_CHECKING:
    from ml.model.artifact import RecommenderModel

FEATURE_NAMES = (
    "als_score",
    "als_rank",
    "als_gap",
    "pop_log",
    "trend_share",
    "pop_user_time_7d",
    "pop_user_time_30d",
    "item_age_at_user_days",
    "item_age_days",
    "sim_recent_max",
    "sim_recent_mean",
    "sim_last",
    "content_sim_max",
    "content_sim_mean",
    "cooc_recent",
    "ui_count",
    "ui_repeat",
    "ui_days_since_last",
    "ui_days_since_repeat",
    "item_interval_days",
    "ui_due_ratio",
    "buy_again",
    "ord_share_last5",
    "ord_share_all",
    "ord_since_last",
    "ord_due_ratio",
    "ord_reorder_rate",
    "cat_share",
    "cat_lift",
    "price_ratio_log",
    "user_events_log",
    "user_span_days",
    "user_idle_days",
    "user_idle_ratio",
    "user_items_log",
    "user_repeat_rate",
    "item_repeat_rate",
    "is_seen",
    "in_trending",
)


def candidate_features(
    model: RecommenderModel,
    shoppers: np.ndarray | ShopperState,
    cands: np.ndarray,
    als_rank: np.ndarray,
) -> np.ndarray:
    """Feature matrix (b * W, len(FEATURE_NAMES)) float32 for a (b, W) candidate matrix.

    ``shoppers`` is a :class:`~ml.model.state.ShopperState` (training cells or live history),
    or model rows of known shoppers (their stored state). Rows for -1 slots are filled but
    meaningless; callers mask them. Missing values are NaN (LightGBM routes them explicitly).
    """
    s = shoppers if isinstance(shoppers, ShopperState) else stored_state(model, shoppers)
    a = model.arrays
    b, w = cands.shape
    valid = cands >= 0
    c = np.maximum(cands, 0)
    ref = s.ref[:, None]
    f = np.full((b, w, len(FEATURE_NAMES)), np.nan, dtype=np.float32)
    col = {name: j for j, name in enumerate(FEATURE_NAMES)}

    def put(name: str, value: np.ndarray) -> None:
        f[:, :, col[name]] = value

    uf = s.factors
    vf = a["item_factors"][c]
    als = np.matmul(vf, uf[:, :, None])[:, :, 0]
    put("als_score", als)
    put("als_rank", als_rank)
    top = np.where(als_rank == 1, als, -np.inf).max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, als.max(axis=1, keepdims=True))
    put("als_gap", top - als)
    put("pop_log", np.log1p(a["n_users_item"][c]))
    trend = a["trending"]
    put("trend_share", trend[c] / max(float(trend.sum()), 1e-9))
    t_u = s.last_ts[:, None]
    put("pop_user_time_7d", model.bins.window_share(c, t_u, 7))
    put("pop_user_time_30d", model.bins.window_share(c, t_u, 30))
    first = a["item_first_ts"][c]
    put("item_age_at_user_days", (t_u - first) / DAY)
    put("item_age_days", (ref - first) / DAY)

    recent = s.recent  # (b, R)
    rmask = recent >= 0
    n_recent = np.maximum(rmask.sum(axis=1), 1)[:, None]
    if model.item_unit is not None:
        sims = _recent_similarity(model.item_unit, c, recent)
        _put_similarity(f, col, "sim", sims, rmask, n_recent)
        put("sim_last", np.where(rmask[:, :1], sims[:, 0, :], np.nan))
    if model.has_content:
        cs = _recent_similarity(a["content"], c, recent)
        _put_similarity(f, col, "content_sim", cs, rmask, n_recent)
    if model.cooc.nnz:
        # Sum of bought-together scores from the last few items: one gather of every
        # (recent item, candidate) cell, summed over the recent items. A sparse product of
        # the recent items' rows costs the same for a batch, but four scipy matrices built
        # per call tripled a single shopper's cost (fresh serving re-ranks one at a time).
        r3 = recent[:, : model.serving.session_items]
        n_r = r3.shape[1]
        co = model.cooc
        pairs = csr_gather(
            co.indptr, co.indices, co.data, model.n_items,
            np.broadcast_to(r3[:, :, None], (b, n_r, w)).ravel(),
            np.broadcast_to(cands[:, None, :], (b, n_r, w)).ravel(),
        )  # fmt: skip
        put("cooc_recent", pairs.reshape(b, n_r, w).sum(axis=1))

    rows = np.broadcast_to(s.rows[:, None], (b, w)).ravel()
    cols = cands.ravel()
    t = s.table

    cell_pos = csr_positions(t.indptr, t.indices, model.n_items, rows, cols)

    def cell(name: str, default: float = 0.0) -> np.ndarray:
        return take_at(t.data[name], cell_pos, default).reshape(b, w)

    count = cell("count")
    put("ui_count", count)
    put("ui_repeat", cell("repeat_count"))
    last = cell("last_ts", np.nan)
    put("ui_days_since_last", (ref - last) / DAY)
    last_rep = cell("last_repeat_ts", np.nan)
    last_rep = np.where(last_rep > 0, last_rep, np.nan)
    days_rep = (ref - last_rep) / DAY
    put("ui_days_since_repeat", days_rep)
    item_iv = a["item_interval"][c]
    put("item_interval_days", item_iv)
    own_iv = cell("interval", np.nan)
    expected = np.where(np.isnan(own_iv), item_iv, own_iv)
    with np.errstate(invalid="ignore", divide="ignore"):
        put("ui_due_ratio", days_rep / np.maximum(expected, 1.0))
    put("buy_again", cell("buy_again"))
    # Baskets (NaN for shoppers without orders): share of the last five orders holding the
    # item, orders since the last one that did (NaN: never), the shopper's reorder rate.
    n_orders = s.n_orders[:, None]
    put("ord_share_last5", last_orders_share(cell("ord_mask"), n_orders))
    ord_last = cell("ord_last")
    ord_count = cell("ord_count")
    since = np.where(ord_last > 0, n_orders - ord_last, np.nan)
    put("ord_since_last", since)
    with np.errstate(invalid="ignore", divide="ignore"):
        put("ord_share_all", np.where(n_orders > 0, ord_count / n_orders, np.nan))
        # Orders since the item's last one against the shopper's usual orders between two
        # of them (its personal cycle, counted in orders).
        put("ord_due_ratio", since * ord_count / np.where(ord_count > 0, n_orders, np.nan))
    put("ord_reorder_rate", s.reorder_rate[:, None])
    put("is_seen", (count > 0).astype(np.float32))

    cats = model._item_cats[c]  # (b, w, MAX_CATS)
    if cats.shape[-1] and (cats >= 0).any():
        n_cats = len(model._category_names)
        user_cat = s.user_cat
        has = cats >= 0
        safe = np.maximum(cats, 0)
        if n_cats <= 4096:
            dense = user_cat.toarray()
            share = np.take_along_axis(dense, safe.reshape(b, -1), axis=1).reshape(cats.shape)
        else:
            local = np.broadcast_to(np.arange(b)[:, None, None], cats.shape).ravel()
            share = csr_gather(
                user_cat.indptr, user_cat.indices, user_cat.data, n_cats, local, cats.ravel()
            ).reshape(cats.shape)
        share = np.where(has, share, -1.0)
        put("cat_share", _max_last(share))
        lift = np.where(has, share / np.maximum(a["cat_share"][safe], 1e-9), -1.0)
        put("cat_lift", _max_last(lift))
    price = a["item_price"][c]
    uprice = s.price[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        put(
            "price_ratio_log",
            np.log(np.where(price > 0, price, np.nan) / np.where(uprice > 0, uprice, np.nan)),
        )
    put("user_events_log", np.log1p(s.n_events)[:, None])
    put("user_span_days", ((s.last_ts - s.first_ts) / DAY)[:, None])
    idle = (s.ref - s.last_ts) / DAY
    put("user_idle_days", idle[:, None])
    # Days since the shopper's last visit against their usual days between orders.
    with np.errstate(invalid="ignore", divide="ignore"):
        usual_gap = np.where(
            s.n_orders >= 2, (s.last_ts - s.first_ts) / DAY / (s.n_orders - 1), np.nan
        )
        put("user_idle_ratio", (idle / np.maximum(usual_gap, 1.0))[:, None])
    put("user_items_log", np.log1p(s.n_items)[:, None])
    put("user_repeat_rate", s.repeat_rate[:, None])
    put("item_repeat_rate", a["item_repeat_rate"][c])
    put(
        "in_trending",
        (model._trend_rank[c] < model.serving.trending_candidates).astype(np.float32),
    )
    f[~valid] = np.nan
    return f.reshape(b * w, len(FEATURE_NAMES))


def _put_similarity(
    f: np.ndarray,
    col: dict[str, int],
    prefix: str,
    sims: np.ndarray,
    rmask: np.ndarray,
    n_recent: np.ndarray,
) -> None:
    """Max and mean similarity to the shopper's recent items (NaN without any).

    ``sims`` is (b, R, w): reducing over the middle axis runs vector-wide over w.
    """
    m = rmask[:, :, None]
    best = np.where(m, sims, -np.inf).max(axis=1)
    f[:, :, col[prefix + "_recent_max" if prefix == "sim" else prefix + "_max"]] = np.where(
        np.isfinite(best), best, np.nan
    )
    mean = np.where(m, sims, 0.0).sum(axis=1) / n_recent
    f[:, :, col[prefix + "_recent_mean" if prefix == "sim" else prefix + "_mean"]] = np.where(
        rmask.any(axis=1)[:, None], mean, np.nan
    )


def _recent_similarity(vectors: np.ndarray, cands: np.ndarray, recent: np.ndarray) -> np.ndarray:
    """(b, R, w) dot products of each shopper's R recent items with their w candidates.

    Computed as (w, d) @ (d, R) per shopper (the faster product, and the summation order the
    ranker was trained with), then laid out (b, R, w) for vector-wide reductions over R.
    """
    sims = np.matmul(vectors[cands], vectors[np.maximum(recent, 0)].transpose(0, 2, 1))
    return np.ascontiguousarray(sims.transpose(0, 2, 1))


def _max_last(x: np.ndarray) -> np.ndarray:
    """``x.max(axis=-1)`` for a short last axis, as element-wise maxima of its slices (numpy
    reduces a length-3 axis one output element at a time).
    """
    out = x[..., 0].copy()
    for j in range(1, x.shape[-1]):
        np.maximum(out, x[..., j], out=out)
    return out
