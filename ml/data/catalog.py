"""Item metadata (:class:`Catalog`): ids, texts, categories, prices, creation times, stock."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np


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
