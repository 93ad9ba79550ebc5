"""The mapping between the store's string ids and the integer positions the engine works on."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ml.data.catalog import Catalog
from ml.data.records import Interactions


def lookup_coded(
    lookup: Callable[[Iterable[object]], np.ndarray],
    codes: np.ndarray,
    vocab: np.ndarray,
    dtype: type = np.int64,
) -> np.ndarray:
    """``lookup(vocab[codes])`` computed as ``lookup(vocab)[codes]``, as ``dtype`` (int32
    halves the per-event array; widen before multiplying positions into keys)."""
    if len(codes) == 0:
        return np.zeros(0, dtype=dtype)
    return np.asarray(lookup(vocab), dtype=dtype)[codes]


@dataclass
class IdIndex:
    """Bidirectional mapping between string ids and contiguous integer positions."""

    ids: np.ndarray  # numpy unicode array, position -> id

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, dtype=str) if len(self.ids) else np.zeros(0, dtype="<U1")
        self._pos = {v: i for i, v in enumerate(self.ids.tolist())}

    def __len__(self) -> int:
        return len(self.ids)

    def resident_bytes(self) -> int:
        """Estimated private memory of the position dictionary (a dict slot, a str key and an
        int per id; the ids array is counted by whoever owns it)."""
        return sys.getsizeof(self._pos) + len(self) * (100 + self.ids.dtype.itemsize // 4)

    def get(self, key: str) -> int | None:
        return self._pos.get(key)

    def lookup(self, keys: Iterable[object]) -> np.ndarray:
        """Positions of ``keys`` (int64), -1 for unknown ids."""
        pos = self._pos
        return np.fromiter((pos.get(str(k), -1) for k in keys), dtype=np.int64)

    def lookup_column(
        self, interactions: Interactions, column: str, dtype: type = np.int64
    ) -> np.ndarray:
        """:meth:`lookup` of a whole id column of ``interactions``, via its codes (one dict
        lookup per distinct id instead of per event), as ``dtype``.
        """
        codes, vocab = interactions.codes(column)
        return lookup_coded(self.lookup, codes, vocab, dtype)


def build_index(
    interactions: Interactions, catalog: Catalog | None = None
) -> tuple[IdIndex, IdIndex]:
    """Shopper and item indices: shoppers in order of first appearance; items are the catalog
    in its order followed by items that only occur in events, in order of first appearance.
    """
    users = _in_order_of_appearance(*interactions.codes("user_ids"))
    cat_items = [] if catalog is None else list(dict.fromkeys(catalog.item_ids.tolist()))
    event_items = _in_order_of_appearance(*interactions.codes("item_ids"))
    items = list(dict.fromkeys(cat_items + event_items))
    return IdIndex(np.array(users, dtype=str)), IdIndex(np.array(items, dtype=str))


def _in_order_of_appearance(codes: np.ndarray, vocab: np.ndarray) -> list[object]:
    """The vocabulary entries ``codes`` use, in order of first use (one sort of the codes, no
    Python object per event)."""
    if len(codes) == 0:
        return []
    used, first = np.unique(codes, return_index=True)
    return vocab[used[np.argsort(first, kind="stable")]].tolist()
