"""K-Means shopper segments and each segment's favourite items (cold-start lists)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans

FIT_MAX_SHOPPERS = 100_000


def fit_segments(
    user_vectors: np.ndarray,
    user_items: sp.csr_matrix,
    *,
    n_segments: int | None = None,
    top_n: int = 100,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluster shoppers and rank items per cluster.

    ``user_vectors`` are unit-norm taste vectors (e.g. ALS user factors); shoppers with a zero
    vector get segment -1. Default segment count: ``clip(n_active // 50, 2, 12)``. Returns
    ``(centers (s, d), user_segment (n_users,), segment_items (s, top_n) item indices by number
    of segment shoppers, -1 padded)``. Above :data:`FIT_MAX_SHOPPERS` shoppers the centers are
    fitted on a seeded sample of that many. With fewer than 4 usable shoppers, no segments (s = 0).
    """
    n_users = user_vectors.shape[0]
    active = np.linalg.norm(user_vectors, axis=1) > 0
    n_active = int(active.sum())
    assign = np.full(n_users, -1, dtype=np.int32)
    if n_active < 4:
        return (
            np.zeros((0, user_vectors.shape[1]), np.float32),
            assign,
            np.zeros((0, top_n), np.int32),
        )
    k = n_segments or int(np.clip(n_active // 50, 2, 12))
    k = min(k, n_active // 2)
    km = KMeans(n_clusters=k, n_init=2, max_iter=100, random_state=random_state)
    rows = np.flatnonzero(active)
    if n_active <= FIT_MAX_SHOPPERS:
        assign[rows] = km.fit_predict(user_vectors[rows])
    else:
        # Big stores: the centers are learned on a seeded sample of shoppers (k-means on a
        # hundred thousand points places a dozen centers as well as on millions), then every
        # shopper is assigned to the nearest, a slice at a time (no copy of all the vectors).
        rng = np.random.default_rng(random_state)
        km.fit(user_vectors[np.sort(rng.choice(rows, FIT_MAX_SHOPPERS, replace=False))])
        for start in range(0, n_active, FIT_MAX_SHOPPERS):
            part = rows[start : start + FIT_MAX_SHOPPERS]
            assign[part] = km.predict(user_vectors[part])
    binary = user_items.copy().tocsr()
    binary.data[:] = 1.0
    members = sp.csr_matrix(
        (np.ones(n_active, np.float32), (assign[active], np.flatnonzero(active))),
        shape=(k, n_users),
    )
    per_segment = np.asarray((members @ binary).todense())
    top_n_eff = min(top_n, user_items.shape[1])
    items = np.full((k, top_n), -1, dtype=np.int32)
    for s in range(k):
        row = per_segment[s]
        order = np.lexsort((np.arange(len(row)), -row))[:top_n_eff]
        order = order[row[order] > 0]
        items[s, : len(order)] = order
    return km.cluster_centers_.astype(np.float32), assign, items
