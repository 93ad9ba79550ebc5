"""Input data containers and the weighted shopper x item matrix.

Everything downstream works on integer indices: rows are shoppers, columns are items. This module
owns the mapping between the store's string ids and those indices, and the aggregation of raw
events into per (shopper, item) statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import scipy.sparse as sp

EVENT_TYPES = ("view", "add_to_cart", "purchase", "rating", "click")
DAY = 86_400
_PLAIN_TYPES = ("view", "click", "add_to_cart", "purchase")  # fixed weight per event


@dataclass
class Interactions:
    """Raw shopper events, one entry per event, all arrays of equal length.

    ``values`` holds the rating for ``rating`` events and NaN otherwise; ``timestamps`` are unix
    seconds. Arrays are not copied; treat an instance as immutable.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    event_types: np.ndarray
    values: np.ndarray
    timestamps: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.user_ids)
        for f in fields(self):
            if len(getattr(self, f.name)) != n:
                raise ValueError(f"Interactions.{f.name} has a different length than user_ids")
        # A set over the list, not np.unique: sorting a million Python strings costs seconds.
        unknown = set(self.event_types.tolist()) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event types: {sorted(unknown)}")

    @classmethod
    def from_rows(
        cls, rows: Iterable[tuple[object, object, str, float | None, int | float]]
    ) -> Interactions:
        """Build from ``(user_id, item_id, event_type, value_or_None, ts_seconds)`` tuples.

        Ids are converted to ``str``. Raises ``ValueError`` for an event type outside
        ``EVENT_TYPES``.
        """
        users: list[str] = []
        items: list[str] = []
        types: list[str] = []
        values: list[float] = []
        stamps: list[int] = []
        for user_id, item_id, event_type, value, ts in rows:
            users.append(str(user_id))
            items.append(str(item_id))
            types.append(str(event_type))
            values.append(np.nan if value is None else float(value))
            stamps.append(int(ts))
        return cls(
            user_ids=np.array(users, dtype=object),
            item_ids=np.array(items, dtype=object),
            event_types=np.array(types, dtype=object),
            values=np.array(values, dtype=np.float64),
            timestamps=np.array(stamps, dtype=np.int64),
        )

    @classmethod
    def empty(cls) -> Interactions:
        return cls.from_rows([])

    def __len__(self) -> int:
        return len(self.user_ids)

    def subset(self, mask_or_index: np.ndarray) -> Interactions:
        """Rows selected by a boolean mask or an index array (a new instance).

        Already validated, so not checked again; codes computed by :meth:`codes` are carried
        over (same vocabulary), so a split never pays for hashing the ids twice.
        """
        out = Interactions.__new__(Interactions)
        out.user_ids = self.user_ids[mask_or_index]
        out.item_ids = self.item_ids[mask_or_index]
        out.event_types = self.event_types[mask_or_index]
        out.values = self.values[mask_or_index]
        out.timestamps = self.timestamps[mask_or_index]
        cache = self.__dict__.get("_codes")
        if cache:
            out._codes = {name: (c[mask_or_index], v) for name, (c, v) in cache.items()}
        return out

    def codes(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, vocabulary)`` of an id column (``user_ids``, ``item_ids``, ``event_types``):
        ``vocabulary[codes]`` equals the column. Computed once per instance (one dict pass) and
        shared with every :meth:`subset`, so per-event id lookups become array gathers over
        the much smaller vocabulary. Subsets keep their parent's vocabulary, which may hold
        values they no longer contain.
        """
        cache = self.__dict__.setdefault("_codes", {})
        if column not in cache:
            values = getattr(self, column)
            seen: dict[object, int] = {}
            codes = np.fromiter(
                (seen.setdefault(v, len(seen)) for v in values.tolist()),
                dtype=np.int64,
                count=len(values),
            )
            vocab = np.empty(len(seen), dtype=object)
            vocab[:] = list(seen)
            cache[column] = (codes, vocab)
        return cache[column]

    def type_mask(self, event_type: str) -> np.ndarray:
        """Boolean mask of the events of one type (via the cached codes)."""
        codes, vocab = self.codes("event_types")
        return (vocab == event_type)[codes] if len(vocab) else np.zeros(len(self), dtype=bool)


@dataclass
class Catalog:
    """Item metadata. ``prices`` is NaN when unknown; ``created_at`` is unix seconds (0 unknown)."""

    item_ids: np.ndarray
    titles: list[str] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)
    categories: list[list[str]] = field(default_factory=list)
    prices: np.ndarray = field(default_factory=lambda: np.zeros(0))
    created_at: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    in_stock: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __post_init__(self) -> None:
        n = len(self.item_ids)
        # Missing columns default to "unknown" so callers may pass only what they have.
        if len(self.titles) == 0:
            self.titles = [""] * n
        if len(self.descriptions) == 0:
            self.descriptions = [""] * n
        if len(self.categories) == 0:
            self.categories = [[] for _ in range(n)]
        if len(self.prices) == 0:
            self.prices = np.full(n, np.nan)
        if len(self.created_at) == 0:
            self.created_at = np.zeros(n, dtype=np.int64)
        if len(self.in_stock) == 0:
            self.in_stock = np.ones(n, dtype=bool)
        for name in ("titles", "descriptions", "categories", "prices", "created_at", "in_stock"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Catalog.{name} has a different length than item_ids")

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[
            tuple[object, str | None, str | None, Sequence[str] | None, float | None, int | None]
            | tuple[
                object,
                str | None,
                str | None,
                Sequence[str] | None,
                float | None,
                int | None,
                bool | None,
            ]
        ],
    ) -> Catalog:
        """Build from ``(item_id, title, description, categories, price, created_at[, in_stock])``.

        ``None`` means unknown for every field; ``in_stock`` defaults to True.
        """
        ids: list[str] = []
        titles: list[str] = []
        descs: list[str] = []
        cats: list[list[str]] = []
        prices: list[float] = []
        created: list[int] = []
        stock: list[bool] = []
        for row in rows:
            item_id, title, desc, categories, price, created_at = row[:6]
            ids.append(str(item_id))
            titles.append(title or "")
            descs.append(desc or "")
            cats.append([str(c) for c in (categories or [])])
            prices.append(np.nan if price is None else float(price))
            created.append(0 if created_at is None else int(created_at))
            stock.append(True if len(row) < 7 or row[6] is None else bool(row[6]))
        return cls(
            item_ids=np.array(ids, dtype=object),
            titles=titles,
            descriptions=descs,
            categories=cats,
            prices=np.array(prices, dtype=np.float64),
            created_at=np.array(created, dtype=np.int64),
            in_stock=np.array(stock, dtype=bool),
        )

    @classmethod
    def empty(cls) -> Catalog:
        return cls(item_ids=np.array([], dtype=object))

    def __len__(self) -> int:
        return len(self.item_ids)


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
        [
            getattr(weights, t) if t in ("view", "click", "add_to_cart", "purchase") else 0.0
            for t in vocab.tolist()
        ],
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


def lookup_coded(
    lookup: Callable[[Iterable[object]], np.ndarray], codes: np.ndarray, vocab: np.ndarray
) -> np.ndarray:
    """``lookup(vocab[codes])`` computed as ``lookup(vocab)[codes]``."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(lookup(vocab), dtype=np.int64)[codes]


def factorize(values: np.ndarray) -> np.ndarray:
    """Integer code per value (int64), codes in order of first appearance.

    A dict pass: much faster than ``np.unique`` on object arrays of strings.
    """
    codes: dict[object, int] = {}
    return np.fromiter(
        (codes.setdefault(v, len(codes)) for v in values.tolist()),
        dtype=np.int64,
        count=len(values),
    )


@dataclass
class IdIndex:
    """Bidirectional mapping between string ids and contiguous integer positions."""

    ids: np.ndarray  # numpy unicode array, position -> id

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, dtype=str) if len(self.ids) else np.zeros(0, dtype="<U1")
        self._pos = {v: i for i, v in enumerate(self.ids.tolist())}

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, key: str) -> int | None:
        return self._pos.get(key)

    def lookup(self, keys: Iterable[object]) -> np.ndarray:
        """Positions of ``keys`` (int64), -1 for unknown ids."""
        pos = self._pos
        return np.fromiter((pos.get(str(k), -1) for k in keys), dtype=np.int64)

    def lookup_column(self, interactions: Interactions, column: str) -> np.ndarray:
        """:meth:`lookup` of a whole id column of ``interactions``, via its cached codes (one
        dict lookup per distinct id instead of per event).
        """
        codes, vocab = interactions.codes(column)
        return lookup_coded(self.lookup, codes, vocab)


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
    u = user_index.lookup_column(interactions, "user_ids")
    i = item_index.lookup_column(interactions, "item_ids")
    keep = (u >= 0) & (i >= 0)
    u, i = u[keep], i[keep]
    ts = interactions.timestamps[keep]
    w = event_weights_array(interactions, weights)[keep]
    w *= time_decay(ts, reference_ts, half_life_days)
    rep = (
        np.ones(len(ts), dtype=bool)
        if repeat_event is None
        else interactions.type_mask(repeat_event)[keep]
    )

    key = u * n_items + i
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    # Run starts of the sorted keys (np.unique would sort them all over again).
    first = np.ones(len(key_sorted), dtype=bool)
    first[1:] = key_sorted[1:] != key_sorted[:-1]
    starts = np.flatnonzero(first)
    uniq = key_sorted[starts]
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
        "count": np.diff(np.append(starts, len(key_sorted))).astype(np.float64),
        "last_ts": np.maximum.reduceat(ts_s, starts).astype(np.float64),
        "first_ts": np.minimum.reduceat(ts_s, starts).astype(np.float64),
    }
    # Distinct (cell, second) occasions of the repeat event.
    cell_of_event = np.empty(len(key), dtype=np.int64)
    cell_of_event[order] = np.cumsum(first) - 1
    rep_cell, rep_ts = cell_of_event[rep], ts[rep]
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
    rows = (uniq // n_items).astype(np.int64)
    indices = (uniq % n_items).astype(np.int32)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    return UserItemTable(
        indptr=np.cumsum(indptr), indices=indices, data=data, shape=(n_users, n_items)
    )


def build_index(
    interactions: Interactions, catalog: Catalog | None = None
) -> tuple[IdIndex, IdIndex]:
    """Shopper and item indices: shoppers in order of first appearance; items are the catalog
    in its order followed by items that only occur in events, in order of first appearance.
    """
    users = list(dict.fromkeys(interactions.user_ids.tolist()))
    cat_items = [] if catalog is None else list(dict.fromkeys(catalog.item_ids.tolist()))
    items = list(dict.fromkeys(cat_items + interactions.item_ids.tolist()))
    return IdIndex(np.array(users, dtype=str)), IdIndex(np.array(items, dtype=str))


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
