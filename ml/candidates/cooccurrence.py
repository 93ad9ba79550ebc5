"""Bought-together: item co-occurrence within a shopper's orders, or sessions without them."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

SESSION_GAP_SECONDS = 30 * 60
MEASURES = ("jaccard", "lift", "count")


def session_ids(
    user_idx: np.ndarray,
    timestamps: np.ndarray,
    *,
    gap_seconds: int = SESSION_GAP_SECONDS,
    max_basket: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Basket id per event, plus the event order used (``order`` indexes the inputs).

    A new basket starts when the shopper changes or after more than ``gap_seconds`` of silence.
    Sessions longer than ``max_basket`` events are cut into consecutive chunks: a binge of 300
    ratings in one sitting says little about which two of them go together, and would cost
    O(300^2) pairs.
    """
    n = len(user_idx)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((timestamps, user_idx))
    u = user_idx[order]
    t = timestamps[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (u[1:] != u[:-1]) | (t[1:] - t[:-1] > gap_seconds)
    sess = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    pos_in_sess = np.arange(n) - starts[sess]
    chunk = pos_in_sess // max_basket
    # Unique id per (session, chunk); chunk < n so this cannot collide.
    basket = sess.astype(np.int64) * (n // max_basket + 1) + chunk
    _, basket = np.unique(basket, return_inverse=True)
    return basket, order


def basket_ids(
    user_idx: np.ndarray,
    timestamps: np.ndarray,
    order_ids: np.ndarray,
    *,
    gap_seconds: int = SESSION_GAP_SECONDS,
    max_basket: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Basket id per event, plus the event order used, as :func:`session_ids` returns them.

    An event whose ``order_ids`` entry is non-empty belongs to the basket of its (shopper,
    order id), however far apart its lines were sent; the others fall back to time-window
    sessions. Orders longer than ``max_basket`` lines are cut into chunks, as sessions are.
    """
    has = np.fromiter((bool(o) for o in order_ids.tolist()), dtype=bool, count=len(order_ids))
    idx_s = np.flatnonzero(~has)
    idx_o = np.flatnonzero(has)
    b_s, o_s = session_ids(
        user_idx[idx_s], timestamps[idx_s], gap_seconds=gap_seconds, max_basket=max_basket
    )
    n_sess = int(b_s.max()) + 1 if len(b_s) else 0
    if len(idx_o) == 0:
        return b_s, idx_s[o_s]
    codes: dict[tuple[int, object], int] = {}
    key = np.fromiter(
        (
            codes.setdefault(k, len(codes))
            for k in zip(user_idx[idx_o].tolist(), order_ids[idx_o].tolist(), strict=True)
        ),
        dtype=np.int64,
        count=len(idx_o),
    )
    o_o = np.lexsort((timestamps[idx_o], key))
    k = key[o_o]
    new = np.ones(len(k), dtype=bool)
    new[1:] = k[1:] != k[:-1]
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    chunk = (np.arange(len(k)) - starts[group]) // max_basket
    _, b_o = np.unique(group * (len(k) // max_basket + 1) + chunk, return_inverse=True)
    return np.concatenate([b_s, b_o + n_sess]), np.concatenate([idx_s[o_s], idx_o[o_o]])


def cooccurrence_matrix(
    basket: np.ndarray,
    item_idx: np.ndarray,
    n_items: int,
    *,
    measure: str = "jaccard",
    min_support: int = 2,
    top_n: int = 50,
) -> sp.csr_matrix:
    """Item x item association scores from baskets, top ``top_n`` per row, diagonal excluded.

    ``basket[j]`` and ``item_idx[j]`` describe one event; an item counts once per basket. With
    ``c_ij`` baskets holding both, ``n_i`` baskets holding i and ``N`` baskets:
    ``jaccard = c_ij / (n_i + n_j - c_ij)``, ``lift = c_ij * N / (n_i * n_j)``, ``count = c_ij``.
    Pairs with ``c_ij < min_support`` are dropped. Returns float32 CSR (sorted indices).
    """
    if measure not in MEASURES:
        raise ValueError(f"unknown co-occurrence measure {measure!r}; expected one of {MEASURES}")
    if len(basket) == 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    n_baskets = int(basket.max()) + 1
    b = sp.csr_matrix(
        (np.ones(len(basket), dtype=np.float32), (basket, item_idx)), shape=(n_baskets, n_items)
    )
    b.data[:] = 1.0  # duplicates were summed: an item counts once per basket
    n_i = np.asarray(b.sum(axis=0)).ravel()
    c = (b.T @ b).tocoo()
    keep = (c.row != c.col) & (c.data >= min_support)
    rows, cols, cij = c.row[keep], c.col[keep], c.data[keep].astype(np.float64)
    if measure == "jaccard":
        score = cij / (n_i[rows] + n_i[cols] - cij)
    elif measure == "lift":
        score = cij * n_baskets / (n_i[rows] * n_i[cols])
    else:
        score = cij
    return _top_n_per_row(rows, cols, score, n_items, top_n)


def _top_n_per_row(
    rows: np.ndarray, cols: np.ndarray, score: np.ndarray, n: int, top_n: int
) -> sp.csr_matrix:
    order = np.lexsort((cols, -score, rows))
    rows, cols, score = rows[order], cols[order], score[order]
    counts = np.bincount(rows, minlength=n)
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(rows)) - starts[rows]
    keep = rank < top_n
    m = sp.csr_matrix((score[keep].astype(np.float32), (rows[keep], cols[keep])), shape=(n, n))
    m.sort_indices()
    return m
