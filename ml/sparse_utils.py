"""Vectorised helpers for gathering from sparse matrices and top-k selection."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def csr_positions(
    indptr: np.ndarray, indices: np.ndarray, n_cols: int, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Position in ``indices``/data of cell ``(rows[j], cols[j])``, -1 where not stored.

    Requires sorted column indices within each row (canonical CSR). Negative ``rows``/``cols``
    (padding) give -1. Cost O(len(rows) * log(nnz of the touched rows)); compute once and reuse
    for every data column sharing the sparsity pattern.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    out = np.full(rows.shape, -1, dtype=np.int64)
    valid = (rows >= 0) & (cols >= 0)
    if not valid.any() or len(indices) == 0:
        return out
    r = rows[valid]
    c = cols[valid]
    # Only the touched rows: slice them out so the key space is small and sorted.
    if r.min() == r.max():  # one shopper's row (fresh serving): no sort needed
        uniq_rows, inv = r[:1], np.zeros(len(r), dtype=np.int64)
    else:
        uniq_rows, inv = np.unique(r, return_inverse=True)
    starts = indptr[uniq_rows]
    lens = indptr[uniq_rows + 1] - starts
    total = int(lens.sum())
    if total == 0:
        return out
    offsets = np.cumsum(lens) - lens
    src = np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, lens)
    local_row = np.repeat(np.arange(len(uniq_rows), dtype=np.int64), lens)
    keys = local_row * n_cols + indices[src].astype(np.int64)
    q = inv.astype(np.int64) * n_cols + c
    pos = np.minimum(np.searchsorted(keys, q), total - 1)
    found = np.where(keys[pos] == q, src[pos], -1)
    out[valid] = found
    return out


def take_at(data: np.ndarray, positions: np.ndarray, default: float = 0.0) -> np.ndarray:
    """``data[positions]`` as float64 with ``default`` where ``positions`` is -1."""
    if len(data) == 0:
        return np.full(positions.shape, default, dtype=np.float64)
    vals = data[np.maximum(positions, 0)].astype(np.float64)
    vals[positions < 0] = default
    return vals


def csr_gather(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    n_cols: int,
    rows: np.ndarray,
    cols: np.ndarray,
    default: float = 0.0,
) -> np.ndarray:
    """``M[rows[j], cols[j]]`` for every j, ``default`` where the cell is not stored or the
    index is negative (padding). See :func:`csr_positions` for requirements and cost.
    """
    return take_at(data, csr_positions(indptr, indices, n_cols, rows, cols), default)


def gather(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """:func:`csr_gather` on a scipy CSR matrix (sorted indices enforced)."""
    if not matrix.has_sorted_indices:
        matrix.sort_indices()
    return csr_gather(matrix.indptr, matrix.indices, matrix.data, matrix.shape[1], rows, cols)


def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` column indices per row of a dense score matrix, best first, with scores.

    Entries equal to ``-inf`` are never returned: their slots are -1 with score ``-inf``.
    Ties are broken by the lower column index (deterministic).
    """
    n_rows, n_cols = scores.shape
    k = min(k, n_cols)
    if k <= 0:
        return np.zeros((n_rows, 0), dtype=np.int64), np.zeros((n_rows, 0))
    if k < n_cols:
        # Partition for the k largest in place of the k smallest of ``-scores``: negating
        # first would copy the whole (rows x catalog) matrix, a third of the cost.
        part = np.argpartition(scores, n_cols - k, axis=1)[:, n_cols - k :]
    else:
        part = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols)).copy()
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    idx = np.take_along_axis(part, order, axis=1).astype(np.int64)
    top = np.take_along_axis(part_scores, order, axis=1)
    idx[~np.isfinite(top) & (top < 0)] = -1
    return idx, top


def dedup_rows(cands: np.ndarray) -> np.ndarray:
    """Per row, keep the first occurrence of each non-negative value; others become -1.

    Row order of the kept values is preserved.
    """
    if cands.shape[1] == 0:
        return cands
    order = np.argsort(cands, axis=1, kind="stable")
    s = np.take_along_axis(cands, order, axis=1)
    dup = np.zeros_like(s, dtype=bool)
    dup[:, 1:] = s[:, 1:] == s[:, :-1]
    out = cands.copy()
    mask = np.zeros_like(dup)
    np.put_along_axis(mask, order, dup, axis=1)
    out[mask] = -1
    return out


def seen_mask(
    indptr: np.ndarray, indices: np.ndarray, n_cols: int, rows: np.ndarray, cands: np.ndarray
) -> np.ndarray:
    """Boolean (len(rows), width) mask: is ``cands[r, j]`` stored in CSR row ``rows[r]``?"""
    rr = np.broadcast_to(np.asarray(rows)[:, None], cands.shape)
    return (
        csr_positions(indptr, indices, n_cols, rr.ravel(), cands.ravel()).reshape(cands.shape) >= 0
    )
