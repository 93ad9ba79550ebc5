"""Raw input: shopper events (:class:`Interactions`) and item metadata (:class:`Catalog`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields

import numpy as np

EVENT_TYPES = ("view", "add_to_cart", "purchase", "rating", "click")
DAY = 86_400


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
class Interactions:
    """Raw shopper events, one entry per event, all arrays of equal length.

    ``values`` holds the rating for ``rating`` events and NaN otherwise; ``timestamps`` are unix
    seconds; ``order_ids`` (object array) names the order a purchase belongs to, ``""`` or None
    when unknown (the default: every event unknown). Arrays are not copied; treat an instance
    as immutable.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    event_types: np.ndarray
    values: np.ndarray
    timestamps: np.ndarray
    order_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.user_ids)
        if self.order_ids is None:
            self.order_ids = np.full(n, "", dtype=object)
        for f in fields(self):
            if len(getattr(self, f.name)) != n:
                raise ValueError(f"Interactions.{f.name} has a different length than user_ids")
        # A set over the list, not np.unique: sorting a million Python strings costs seconds.
        unknown = set(self.event_types.tolist()) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event types: {sorted(unknown)}")

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[
            tuple[object, object, str, float | None, int | float]
            | tuple[object, object, str, float | None, int | float, object]
        ],
    ) -> Interactions:
        """Build from ``(user_id, item_id, event_type, value_or_None, ts_seconds[, order_id])``
        tuples.

        Ids are converted to ``str``; a missing or None ``order_id`` is ``""`` (unknown).
        Raises ``ValueError`` for an event type outside ``EVENT_TYPES``.
        """
        users: list[str] = []
        items: list[str] = []
        types: list[str] = []
        values: list[float] = []
        stamps: list[int] = []
        orders: list[str] = []
        for row in rows:
            user_id, item_id, event_type, value, ts = row[:5]
            users.append(str(user_id))
            items.append(str(item_id))
            types.append(str(event_type))
            values.append(np.nan if value is None else float(value))
            stamps.append(int(ts))
            order_id = row[5] if len(row) > 5 else None
            orders.append("" if order_id is None else str(order_id))
        return cls(
            user_ids=np.array(users, dtype=object),
            item_ids=np.array(items, dtype=object),
            event_types=np.array(types, dtype=object),
            values=np.array(values, dtype=np.float64),
            timestamps=np.array(stamps, dtype=np.int64),
            order_ids=np.array(orders, dtype=object),
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
        out.order_ids = self.order_ids[mask_or_index] if self.order_ids is not None else None
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

    def order_mask(self) -> np.ndarray:
        """Boolean mask of the purchases that carry an order id."""
        orders = self.order_ids if self.order_ids is not None else ()
        known = np.fromiter((bool(o) for o in orders), dtype=bool, count=len(self))
        return known & self.type_mask("purchase")

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
