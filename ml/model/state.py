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


def stored_state(
    model: RecommenderModel, u: np.ndarray, ref: np.ndarray | float | None = None
) -> ShopperState:
    """State of known shoppers (model rows ``u``) from their training cells, as of ``ref``
    (unix seconds, one per shopper or one for all; default: the model's reference time)."""
    u = np.asarray(u, dtype=np.int64)
    when = float(model.reference_ts) if ref is None else ref
    return cell_state(model, model.table, u, model.arrays["user_factors"][u], when)


def cell_state(
    model: RecommenderModel,
    table: UserItemTable,
    rows: np.ndarray,
    factors: np.ndarray,
    ref: np.ndarray | float,
) -> ShopperState:
    """State of the shoppers in rows ``rows`` of ``table`` as of ``ref`` (per shopper or one
    for all): the one code path behind training features (the model's cells at each
    prediction's time) and serving features (live cells, see :func:`live_state`).

    Every per-shopper statistic is derived from the cells, so the same cells at the same time
    give the same features whichever path built them. The recency-dependent buy-again score is
    recomputed at ``ref``; ``ref`` must not precede the shoppers' cells.
    """
    a = model.arrays
    rows = np.asarray(rows, dtype=np.int64)
    local = _take_rows(table, rows)
    b = len(rows)
    ref_rows = np.broadcast_to(np.asarray(ref, dtype=np.float64), (b,)).copy()
    cell_rows = local.row_ids()
    local.data["interval"] = cell_intervals(local)
    local.data["buy_again"] = buy_again_scores(local, a["item_interval"], ref_rows[cell_rows])
    count = local.data["count"]
    n_events = np.bincount(cell_rows, weights=count, minlength=b)
    n_items = np.diff(local.indptr).astype(np.float64)
    last_ts = np.zeros(b)
    first_ts = np.full(b, np.inf)
    np.maximum.at(last_ts, cell_rows, local.data["last_ts"])
    np.minimum.at(first_ts, cell_rows, local.data["first_ts"])
    n_orders, reorder_rate = shopper_orders(local)
    return ShopperState(
        factors=np.asarray(factors, dtype=np.float32).reshape(b, -1),
        recent=recent_items(local),
        last_ts=last_ts,
        first_ts=np.where(np.isfinite(first_ts), first_ts, 0.0),
        n_events=n_events,
        n_items=n_items,
        repeat_rate=1.0 - n_items / np.maximum(n_events, 1.0),
        n_orders=n_orders,
        reorder_rate=reorder_rate,
        price=row_nanmedian(cell_rows, a["item_price"][local.indices], b),
        user_cat=_category_shares(model, local),
        table=local,
        rows=np.arange(b, dtype=np.int64),
        seen=sp.csr_matrix(
            (np.ones(local.nnz, np.float32), local.indices, local.indptr), shape=local.shape
        ),
        ref=ref_rows,
    )


def _take_rows(table: UserItemTable, rows: np.ndarray) -> UserItemTable:
    """The cells of ``rows`` (in that order) as a table of ``len(rows)`` rows."""
    starts, ends = table.indptr[rows], table.indptr[rows + 1]
    lens = ends - starts
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    src = np.repeat(starts - indptr[:-1], lens) + np.arange(int(indptr[-1]))
    return UserItemTable(
        indptr=indptr,
        indices=table.indices[src],
        data={name: values[src] for name, values in table.data.items()},
        shape=(len(rows), table.shape[1]),
    )


def row_nanmedian(rows: np.ndarray, values: np.ndarray, n_rows: int) -> np.ndarray:
    """Per row, the median of its non-NaN ``values`` (NaN without any)."""
    out = np.full(n_rows, np.nan)
    ok = ~np.isnan(values)
    if not ok.any():
        return out
    r, v = rows[ok], values[ok]
    order = np.lexsort((v, r))
    r, v = r[order], v[order]
    uniq, starts, counts = np.unique(r, return_index=True, return_counts=True)
    out[uniq] = (v[starts + (counts - 1) // 2] + v[starts + counts // 2]) / 2
    return out


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
    """State of one shopper from a one-row live table (see :func:`live_table`), as of ``ref``:
    :func:`cell_state`, so the training cells alone at time ``t`` give exactly the training
    features at ``t``."""
    return cell_state(model, table, np.zeros(1, dtype=np.int64), factors, float(ref))


def _category_shares(model: RecommenderModel, table: UserItemTable) -> sp.csr_matrix:
    """(rows, n_cats) share of each shopper's (item, category) pairs per category.

    Built as CSR arrays directly (sorted indices, no explicit zeros): assembling it through
    COO and a diagonal product cost a sixth of a fresh one-shopper ranking. Values are the
    product's: count * (1 / row total)."""
    n_rows, n_cats = table.shape[0], len(model._category_names)
    cats = model._item_cats[table.indices]  # (cells, MAX_CATS)
    r, j = np.nonzero(cats >= 0)
    rows = table.row_ids()[r]
    keys, counts = np.unique(rows * n_cats + cats[r, j].astype(np.int64), return_counts=True)
    key_rows = keys // n_cats
    scale = 1.0 / np.maximum(np.bincount(rows, minlength=n_rows).astype(np.float64), 1.0)
    index_dtype = np.int32 if len(keys) < np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(n_rows + 1, dtype=index_dtype)
    np.cumsum(np.bincount(key_rows, minlength=n_rows), out=indptr[1:])
    return sp.csr_matrix(
        (counts.astype(np.float64) * scale[key_rows], (keys % n_cats).astype(index_dtype), indptr),
        shape=(n_rows, n_cats),
    )
