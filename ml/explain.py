"""Explanations: why an item is in a shopper's list — its candidate source
(:class:`ListReasons`, filled while ranking) and which of the shopper's recent items a
recommended item is closest to.

Pure numpy; the caller maps ids to row indices of the model's item vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Cosine similarity below which an item is not "like" a recent item: ALS item factors of
# unrelated items sit around 0-0.2, items bought by the same shoppers well above 0.3.
MIN_SIMILARITY = 0.3


def closest_recent(
    vectors: np.ndarray,
    items: np.ndarray,
    recent: np.ndarray,
    min_similarity: float = MIN_SIMILARITY,
) -> tuple[np.ndarray, np.ndarray]:
    """For each row index in ``items``, the position in ``recent`` (row indices, most recent
    last) of the recent item whose vector is most similar (cosine), and that similarity.

    Returns ``(positions, similarities)``, both of ``len(items)``. A position is -1 when the
    item or every recent item is unknown (index < 0), when the best similarity is below
    ``min_similarity``, or when the only candidate is the item itself. Ties go to the more
    recent item.
    """
    n = len(items)
    positions = np.full(n, -1, dtype=np.int64)
    best = np.zeros(n, dtype=np.float64)
    known_items = items >= 0
    known_recent = recent >= 0
    if n == 0 or not known_items.any() or not known_recent.any():
        return positions, best
    a = vectors[np.where(known_items, items, 0)].astype(np.float64)
    b = vectors[np.where(known_recent, recent, 0)].astype(np.float64)
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    sims = a @ b.T  # (items, recent)
    sims[:, ~known_recent] = -np.inf
    sims[~known_items, :] = -np.inf
    sims[items[:, None] == recent[None, :]] = -np.inf  # never "similar to itself"
    # Reverse so argmax's first maximum is the most recent one.
    rev = sims[:, ::-1]
    pick = rev.shape[1] - 1 - np.argmax(rev, axis=1)
    top = sims[np.arange(n), pick]
    ok = np.isfinite(top) & (top >= min_similarity)
    positions[ok] = pick[ok]
    best[ok] = top[ok]
    return positions, best


# --- Where a ranked item came from --------------------------------------------------------------
# Codes of a list item's reason, as ranking produces them (ml.model.serving): its candidate
# source, with model candidates refined by :func:`refine_personal`.
PERSONAL_TASTE, BUY_AGAIN, SIMILAR_TO, BOUGHT_TOGETHER, POPULAR, TRENDING = range(6)
REASON_TYPES = (
    "personal_taste",
    "buy_again",
    "similar_to",
    "bought_together",
    "popular",
    "trending_in_category",
)
# The one-letter form cached lists carry (a list holds a hundred reasons per shopper).
REASON_CODES = ("p", "b", "s", "t", "o", "r")
TYPE_OF_CODE = dict(zip(REASON_CODES, REASON_TYPES, strict=True))


@dataclass
class ListReasons:
    """Why each item of ``(b, k)`` ranked lists is there, row-aligned with the item matrix.

    ``kind``: a reason code (above); ``anchor``: the shopper's recent item (index) a
    ``SIMILAR_TO`` / ``BOUGHT_TOGETHER`` item relates to, else -1; ``gap_days``: the shopper's
    usual interval between purchases of a ``BUY_AGAIN`` item (NaN when unknown).
    """

    kind: np.ndarray
    anchor: np.ndarray
    gap_days: np.ndarray

    @classmethod
    def uniform(cls, shape: tuple[int, int], kind: int) -> ListReasons:
        return cls(
            np.full(shape, kind, dtype=np.int8),
            np.full(shape, -1, dtype=np.int64),
            np.full(shape, np.nan),
        )

    def take(self, order: np.ndarray) -> ListReasons:
        """Rows permuted like ``np.take_along_axis(items, order, axis=1)``."""
        return ListReasons(
            np.take_along_axis(self.kind, order, axis=1),
            np.take_along_axis(self.anchor, order, axis=1),
            np.take_along_axis(self.gap_days, order, axis=1),
        )

    def head(self, k: int) -> ListReasons:
        return ListReasons(self.kind[:, :k], self.anchor[:, :k], self.gap_days[:, :k])

    def concat(self, other: ListReasons) -> ListReasons:
        return ListReasons(
            np.concatenate([self.kind, other.kind], axis=1),
            np.concatenate([self.anchor, other.anchor], axis=1),
            np.concatenate([self.gap_days, other.gap_days], axis=1),
        )

    def encoded(self, row: int, items: list[int], item_ids: np.ndarray) -> list[list]:
        """Row ``row``'s reasons for its first ``len(items)`` items in the compact form cached
        lists carry: ``[code, item_id]`` (similar_to, bought_together), ``[code, gap_days]``
        (buy_again; null when unknown), ``[code]`` otherwise, the code one of
        ``REASON_CODES`` (``TYPE_OF_CODE`` names it)."""
        out: list[list] = []
        kinds = self.kind[row].tolist()
        anchors = self.anchor[row].tolist()
        gaps = self.gap_days[row].tolist()
        for j in range(len(items)):
            kind = kinds[j]
            name = REASON_CODES[kind]
            if kind in (SIMILAR_TO, BOUGHT_TOGETHER) and anchors[j] >= 0:
                out.append([name, str(item_ids[anchors[j]])])
            elif kind == BUY_AGAIN:
                gap = gaps[j]
                out.append([name, None if gap != gap else round(gap, 1)])
            else:
                out.append([name])
        return out


def refine_personal(
    reasons: ListReasons,
    items: np.ndarray,
    recent: np.ndarray,
    vectors: np.ndarray | None,
    min_similarity: float = MIN_SIMILARITY,
) -> None:
    """In place: a ``PERSONAL_TASTE`` item close enough to one of the shopper's recent items
    (rows of ``recent``, newest first, -1 padded; cosine of unit ``vectors``) becomes
    ``SIMILAR_TO`` that item (the closest; ties to the more recent)."""
    personal = (reasons.kind == PERSONAL_TASTE) & (items >= 0)
    if vectors is None or not personal.any() or not (recent >= 0).any():
        return
    a = vectors[np.maximum(items, 0)]  # (b, k, f)
    b = vectors[np.maximum(recent, 0)]  # (b, r, f)
    sims = np.einsum("bkf,brf->bkr", a, b)
    sims[np.broadcast_to((recent < 0)[:, None, :], sims.shape)] = -np.inf
    sims[items[:, :, None] == recent[:, None, :]] = -np.inf
    pick = np.argmax(sims, axis=2)  # first maximum: the most recent (newest first)
    best = np.take_along_axis(sims, pick[:, :, None], axis=2)[:, :, 0]
    close = personal & np.isfinite(best) & (best >= min_similarity)
    reasons.kind[close] = SIMILAR_TO
    reasons.anchor[close] = np.take_along_axis(recent, pick, axis=1)[close]
