"""Per (shopper, item) statistics aggregated from events, and the weighted shopper x item
matrix ALS is fitted on."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import scipy.sparse as sp

from ml.data.catalog import Catalog
from ml.data.index import IdIndex, build_index
from ml.data.records import DAY, Interactions

PLAIN_TYPES = ("view", "click", "add_to_cart", "purchase")  # a fixed weight per event


@dataclass
class EventWeights:
    """Confidence each event type adds to a (shopper, item) cell of the ALS matrix.

    A rating's weight is ``rating * (rating_floor + (1 - rating_floor) * r)`` with ``r`` the
    rating rescaled to 0..1 over the store's observed rating range, so a top rating counts
    ``rating`` and the lowest rating only ``rating * rating_floor``. A rating without a value
    counts as a mid rating.
    """

    view: float = 1.0
    click: float = 0.5
    add_to_cart: float = 3.0
    purchase: float = 5.0
    rating: float = 4.0
    rating_floor: float = 0.1

    def to_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> EventWeights:
        known = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in data.items() if k in known})


def event_weights_array(interactions: Interactions, weights: EventWeights) -> np.ndarray:
    """Per-event confidence weight (float64), before time decay."""
    codes, vocab = interactions.codes("event_types")
    per_type = np.array(
        [getattr(weights, t) if t in PLAIN_TYPES else 0.0 for t in vocab.tolist()],
        dtype=np.float64,
    )
    w = per_type[codes] if len(codes) else np.zeros(0, dtype=np.float64)
    is_rating = interactions.type_mask("rating")
    if is_rating.any():
        vals = interactions.values[is_rating]
        known = ~np.isnan(vals)
        scaled = np.full(len(vals), 0.5)
        if known.any():
            lo, hi = float(vals[known].min()), float(vals[known].max())
            scaled[known] = (vals[known] - lo) / (hi - lo) if hi > lo else 1.0
        floor = weights.rating_floor
        w[is_rating] = weights.rating * (floor + (1.0 - floor) * scaled)
    return w


def time_decay(
    timestamps: np.ndarray, reference_ts: int, half_life_days: float | None
) -> np.ndarray:
    """``0.5 ** (age / half_life)`` per event (1.0 everywhere when ``half_life_days`` is None).

    Events after ``reference_ts`` get age 0, never a boost.
    """
    if not half_life_days:
        return np.ones(len(timestamps), dtype=np.float64)
    age_days = np.maximum(reference_ts - timestamps, 0) / DAY
    return np.power(0.5, age_days / float(half_life_days))


@dataclass
class UserItemTable:
    """Per (shopper, item) aggregates in CSR layout (rows = shoppers, sorted column indices).

    Columns of ``data``: ``weight`` (decayed confidence), ``count`` (events), ``last_ts``,
    ``first_ts``, ``repeat_count`` (distinct repeat occasions), ``first_repeat_ts`` and
    ``last_repeat_ts`` (0 when none). "Repeat events" are purchases when the store has any
    purchase, otherwise every event (so buy-again still means "came back to it").
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: dict[str, np.ndarray]
    shape: tuple[int, int]

    def csr(self, column: str, dtype: type = np.float32) -> sp.csr_matrix:
        return sp.csr_matrix(
            (self.data[column].astype(dtype), self.indices, self.indptr), shape=self.shape
        )

    @property
    def nnz(self) -> int:
        return len(self.indices)

    def row_ids(self) -> np.ndarray:
        """Row index of every stored cell (int64)."""
        return np.repeat(np.arange(self.shape[0], dtype=np.int64), np.diff(self.indptr))


def build_user_item_table(
    interactions: Interactions,
    user_index: IdIndex,
    item_index: IdIndex,
    weights: EventWeights,
    *,
    reference_ts: int,
    half_life_days: float | None,
    repeat_event: str | None,
) -> UserItemTable:
    """Aggregate events into a :class:`UserItemTable`; events with unknown ids are dropped.

    ``repeat_event`` is the event type that counts as a repeat occasion (``None`` = any event).
    Several events of that type at the same second count as one occasion (an order line per
    unit is not several orders).
    """
    n_users, n_items = len(user_index), len(item_index)
    # Millions of events: int32 positions, copies only when some events are dropped, and every
    # per-event temporary released as soon as the per-cell columns no longer need it.
    u = user_index.lookup_column(interactions, "user_ids", np.int32)
    i = item_index.lookup_column(interactions, "item_ids", np.int32)
    keep = (u >= 0) & (i >= 0)
    all_known = bool(keep.all())
    key = u.astype(np.int64) * n_items + i
    del u, i
    ts = interactions.timestamps
    w = event_weights_array(interactions, weights)
    if half_life_days:
        w *= time_decay(ts, reference_ts, half_life_days)
    rep = (
        np.ones(len(ts), dtype=bool)
        if repeat_event is None
        else interactions.type_mask(repeat_event)
    )
    if not all_known:
        key, ts, w, rep = key[keep], ts[keep], w[keep], rep[keep]
    del keep

    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    n_events = len(key)
    del key
    # Run starts of the sorted keys (np.unique would sort them all over again).
    first = np.ones(len(key_sorted), dtype=bool)
    first[1:] = key_sorted[1:] != key_sorted[:-1]
    starts = np.flatnonzero(first)
    uniq = key_sorted[starts]
    del key_sorted
    if len(uniq) == 0:
        empty = {
            name: np.zeros(0)
            for name in (
                "weight",
                "count",
                "last_ts",
                "first_ts",
                "repeat_count",
                "first_repeat_ts",
                "last_repeat_ts",
            )
        }
        return UserItemTable(
            indptr=np.zeros(n_users + 1, dtype=np.int64),
            indices=np.zeros(0, dtype=np.int32),
            data=empty,
            shape=(n_users, n_items),
        )
    ts_s = ts[order]
    data = {
        "weight": np.add.reduceat(w[order], starts),
        "count": np.diff(np.append(starts, n_events)).astype(np.float64),
        "last_ts": np.maximum.reduceat(ts_s, starts).astype(np.float64),
        "first_ts": np.minimum.reduceat(ts_s, starts).astype(np.float64),
    }
    del ts_s, w
    # Distinct (cell, second) occasions of the repeat event.
    cell_of_event = np.empty(n_events, dtype=np.int32 if len(uniq) < 2**31 else np.int64)
    cell_of_event[order] = np.cumsum(first, dtype=cell_of_event.dtype) - 1
    del order, first
    rep_cell, rep_ts = cell_of_event[rep], ts[rep]
    del cell_of_event
    rep_cells = np.zeros(len(uniq))
    first_rep = np.zeros(len(uniq))
    last_rep = np.zeros(len(uniq))
    if len(rep_cell):
        occ_order = np.lexsort((rep_ts, rep_cell))
        occ_cell, occ_ts = rep_cell[occ_order], rep_ts[occ_order]
        new_occ = np.ones(len(occ_cell), dtype=bool)
        new_occ[1:] = (occ_cell[1:] != occ_cell[:-1]) | (occ_ts[1:] != occ_ts[:-1])
        occ_cell, occ_ts = occ_cell[new_occ], occ_ts[new_occ].astype(np.float64)
        rep_cells += np.bincount(occ_cell, minlength=len(uniq))
        # Sorted by (cell, ts): a cell's first occasion is its earliest, its last the latest.
        cell_start = np.ones(len(occ_cell), dtype=bool)
        cell_start[1:] = occ_cell[1:] != occ_cell[:-1]
        cell_end = np.roll(cell_start, -1)
        first_rep[occ_cell[cell_start]] = occ_ts[cell_start]
        last_rep[occ_cell[cell_end]] = occ_ts[cell_end]
    data["repeat_count"] = rep_cells
    data["first_repeat_ts"] = first_rep
    data["last_repeat_ts"] = last_rep
    indices = (uniq % n_items).astype(np.int32)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(uniq // n_items, minlength=n_users))
    return UserItemTable(indptr=indptr, indices=indices, data=data, shape=(n_users, n_items))


def build_seen_cells(
    interactions: Interactions, user_index: IdIndex, item_index: IdIndex
) -> UserItemTable:
    """Which (shopper, item) cells ``interactions`` touch: a :class:`UserItemTable` with the
    layout only (no data columns), for "already seen" filters; events with unknown ids are
    dropped. A fraction of :func:`build_user_item_table`'s memory (one sort of int64 keys)."""
    n_users, n_items = len(user_index), len(item_index)
    u = user_index.lookup_column(interactions, "user_ids", np.int32)
    i = item_index.lookup_column(interactions, "item_ids", np.int32)
    known = (u >= 0) & (i >= 0)
    key = u.astype(np.int64) * n_items + i
    del u, i
    if not known.all():
        key = key[known]
    key.sort()
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    uniq = key[first]
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(uniq // n_items, minlength=n_users))
    return UserItemTable(
        indptr=indptr,
        indices=(uniq % n_items).astype(np.int32),
        data={},
        shape=(n_users, n_items),
    )


def build_interaction_matrix(
    interactions: Interactions,
    weights: EventWeights | None = None,
    *,
    half_life_days: float | None = None,
    reference_ts: int | None = None,
    catalog: Catalog | None = None,
) -> tuple[sp.csr_matrix, IdIndex, IdIndex]:
    """Weighted shopper x item CSR matrix (float32) with its row and column indices.

    Cell = sum over the shopper's events on the item of ``event weight * time decay``; decay is
    measured from ``reference_ts`` (default: the latest event). Catalog items without events get
    an empty column.
    """
    weights = weights or EventWeights()
    user_index, item_index = build_index(interactions, catalog)
    ref = (
        int(reference_ts)
        if reference_ts is not None
        else int(interactions.timestamps.max(initial=0))
    )
    table = build_user_item_table(
        interactions,
        user_index,
        item_index,
        weights,
        reference_ts=ref,
        half_life_days=half_life_days,
        repeat_event=None,
    )
    return table.csr("weight"), user_index, item_index
