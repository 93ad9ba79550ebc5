"""What the re-ranker knows about a shopper: one :class:`ShopperState` per batch of shoppers.

Training and batch serving fill it from the model's per-shopper arrays
(:func:`stored_state`); fresh serving fills it from the live history — the training cells plus
the events sent since — as of the newest event (:func:`live_state`). Candidate generation and
:func:`~ml.model.features.candidate_features` read only this, so both paths share one code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from ml.candidates.buy_again import buy_again_scores, cell_intervals
from ml.data import UserItemTable
from ml.model.config import N_RECENT
from ml.model.orders import ORDER_COLUMNS, add_orders, shopper_orders

if TYPE_CHECKING:
    from ml.model.artifact import RecommenderModel

CELL_COLUMNS = (
    "weight",
    "count",
    "last_ts",
    "first_ts",
    "repeat_count",
    "first_repeat_ts",
    "last_repeat_ts",
    *ORDER_COLUMNS,
)


@dataclass
class ShopperState:
    """Per-shopper inputs of candidates and features for ``b`` shoppers (row-aligned arrays).

    ``table``/``rows``: the (shopper, item) cells, row ``rows[j]`` of ``table`` for shopper
    ``j``; ``seen``: (b, n_items) CSR of the touched items (sorted indices); ``ref``: "now" of
    the recency features, per shopper; ``n_orders``/``reorder_rate``: see
    :func:`~ml.model.orders.shopper_orders`.
    """

    factors: np.ndarray
    recent: np.ndarray
    last_ts: np.ndarray
    first_ts: np.ndarray
    n_events: np.ndarray
    n_items: np.ndarray
    repeat_rate: np.ndarray
    n_orders: np.ndarray
    reorder_rate: np.ndarray
    price: np.ndarray
    user_cat: sp.csr_matrix
    table: UserItemTable
    rows: np.ndarray
    seen: sp.csr_matrix
    ref: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


def stored_state(model: RecommenderModel, u: np.ndarray) -> ShopperState:
    """State of known shoppers (model rows ``u``) as of the model's reference time."""
    a = model.arrays
    u = np.asarray(u, dtype=np.int64)
    return ShopperState(
        factors=a["user_factors"][u],
        recent=a["recent"][u],
        last_ts=a["user_last_ts"][u],
        first_ts=a["user_first_ts"][u],
        n_events=a["user_n_events"][u],
        n_items=a["user_n_items"][u],
        repeat_rate=a["user_repeat_rate"][u],
        n_orders=a["user_n_orders"][u],
        reorder_rate=a["user_reorder_rate"][u],
        price=a["user_price"][u],
        user_cat=model.user_cat_matrix[u],
        table=model.table,
        rows=u,
        seen=model._seen_csr[u],
        ref=np.full(len(u), float(model.reference_ts)),
    )


def recent_items(table: UserItemTable, n: int = N_RECENT) -> np.ndarray:
    """(n_rows, n) each row's most recently touched items, newest first (ties: lower item
    index first), -1 padded.
    """
    rows = table.row_ids()
    out = np.full((table.shape[0], n), -1, dtype=np.int32)
    if table.nnz == 0:
        return out
    order = np.lexsort((-table.data["last_ts"], rows))
    r = rows[order]
    counts = np.diff(table.indptr)
    rank = np.arange(len(r)) - (np.cumsum(counts) - counts)[r]
    take = rank < n
    out[r[take], rank[take]] = table.indices[order][take]
    return out


def live_table(
    model: RecommenderModel,
    u: int | None,
    items: np.ndarray,
    weights: np.ndarray,
    stamps: np.ndarray,
    repeat: np.ndarray,
    order_ids: np.ndarray | None = None,
) -> UserItemTable:
    """One-row table: the shopper's training cells (none for ``u=None``) updated with new
    events (item indices, decayed weights, unix seconds, is-repeat-occasion, and optionally
    the order id of each purchase, "" unknown), oldest first. Aggregates exactly as
    :func:`~ml.data.build_user_item_table` and :func:`~ml.model.orders.order_cells` do.
    """
    t = model.table
    lo, hi = (int(t.indptr[u]), int(t.indptr[u + 1])) if u is not None else (0, 0)
    cols = {name: list(t.data[name][lo:hi].tolist()) for name in CELL_COLUMNS}
    index = list(t.indices[lo:hi].tolist())
    pos = {item: j for j, item in enumerate(index)}
    occasions: set[tuple[int, float]] = set()
    for item, w, ts, rep in zip(
        items.tolist(),
        weights.tolist(),
        stamps.astype(np.float64).tolist(),
        repeat.tolist(),
        strict=True,
    ):
        j = pos.get(item)
        if j is None:
            j = pos[item] = len(index)
            index.append(item)
            for name in CELL_COLUMNS:
                cols[name].append(0.0)
            cols["first_ts"][j] = ts
            cols["last_ts"][j] = ts
        cols["weight"][j] += w
        cols["count"][j] += 1.0
        cols["last_ts"][j] = max(cols["last_ts"][j], ts)
        cols["first_ts"][j] = min(cols["first_ts"][j], ts)
        if rep and (item, ts) not in occasions and cols["last_repeat_ts"][j] != ts:
            occasions.add((item, ts))
            cols["repeat_count"][j] += 1.0
            if cols["first_repeat_ts"][j] == 0.0:
                cols["first_repeat_ts"][j] = ts
            cols["last_repeat_ts"][j] = max(cols["last_repeat_ts"][j], ts)
    if order_ids is not None:
        add_orders(cols, pos, items, stamps.astype(np.float64), order_ids)
    order = np.argsort(np.array(index, dtype=np.int64), kind="stable")
    data = {name: np.array(v, dtype=np.float64)[order] for name, v in cols.items()}
    return UserItemTable(
        indptr=np.array([0, len(index)], dtype=np.int64),
        indices=np.array(index, dtype=np.int32)[order],
        data=data,
        shape=(1, model.n_items),
    )


def live_state(
    model: RecommenderModel, table: UserItemTable, factors: np.ndarray, ref: float
) -> ShopperState:
    """State of one shopper from a one-row live table (see :func:`live_table`), as of ``ref``.

    Every statistic is derived from the cells exactly as fitting derives it from events, so the
    training cells alone at the model's reference time give the stored state.
    """
    a = model.arrays
    table.data["interval"] = cell_intervals(table)
    table.data["buy_again"] = buy_again_scores(table, a["item_interval"], ref)
    cells = table.indices
    count = table.data["count"]
    n_events = float(count.sum())
    n_items = float(len(cells))
    if len(cells):
        first_ts = float(table.data["first_ts"].min())
        last_ts = float(table.data["last_ts"].max())
    else:
        first_ts = last_ts = 0.0
    n_orders, reorder_rate = shopper_orders(table)
    return ShopperState(
        factors=np.asarray(factors, dtype=np.float32).reshape(1, -1),
        recent=recent_items(table),
        last_ts=np.array([last_ts]),
        first_ts=np.array([first_ts]),
        n_events=np.array([n_events]),
        n_items=np.array([n_items]),
        repeat_rate=np.array([1.0 - n_items / max(n_events, 1.0)]),
        n_orders=n_orders,
        reorder_rate=reorder_rate,
        price=np.array([_nanmedian(a["item_price"][cells])]),
        user_cat=_category_shares(model, cells),
        table=table,
        rows=np.zeros(1, dtype=np.int64),
        seen=sp.csr_matrix(
            (np.ones(len(cells), np.float32), cells, table.indptr), shape=(1, model.n_items)
        ),
        ref=np.array([float(ref)]),
    )


def _nanmedian(values: np.ndarray) -> float:
    """Median of the non-NaN values (NaN without any), as fitting computes shopper prices."""
    v = np.sort(values[~np.isnan(values)])
    if len(v) == 0:
        return float("nan")
    n = len(v)
    return float((v[(n - 1) // 2] + v[n // 2]) / 2)


def _category_shares(model: RecommenderModel, cells: np.ndarray) -> sp.csr_matrix:
    """(1, n_cats) share of the shopper's (item, category) pairs per category."""
    n_cats = len(model._category_names)
    cats = model._item_cats[cells]
    cats = cats[cats >= 0].astype(np.int64)
    counts = np.bincount(cats, minlength=n_cats).astype(np.float64)
    nz = np.flatnonzero(counts)
    share = counts[nz] * (1.0 / max(float(counts.sum()), 1.0))
    return sp.csr_matrix((share, nz.astype(np.int32), np.array([0, len(nz)])), shape=(1, n_cats))
