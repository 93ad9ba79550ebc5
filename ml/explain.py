"""Explanations: which of a shopper's recent items a recommended item is closest to.

Pure numpy; the caller maps ids to row indices of the model's item vectors.
"""

from __future__ import annotations

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
