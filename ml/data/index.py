"""The mapping between the store's string ids and the integer positions the engine works on."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ml.data.records import Catalog, Interactions


def lookup_coded(
    lookup: Callable[[Iterable[object]], np.ndarray], codes: np.ndarray, vocab: np.ndarray
) -> np.ndarray:
    """``lookup(vocab[codes])`` computed as ``lookup(vocab)[codes]``."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(lookup(vocab), dtype=np.int64)[codes]


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
