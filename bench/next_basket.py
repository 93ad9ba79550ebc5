"""Next-basket baselines for the grocery benchmark: the repeat-buy rule and TIFU-KNN.

Imported by ``bench/quality.py``; not a benchmark of its own. Both work on each shopper's
orders (purchases sharing an order id, in time order) and return top-k item indices of a given
:class:`~ml.data.IdIndex`, so they are scored with exactly the engine's truth and metrics.

* **Repeat-buy** (the rule grocery sites start with): the shopper's own items ranked by how
  many of their last ``window`` orders hold them, then by how many orders overall, then by how
  recently they bought them.
* **TIFU-KNN** (Hu et al., "Modeling Personalized Item Frequency Information for Next-basket
  Recommendation", SIGIR 2020): the shopper's item-frequency vector, orders split into groups
  of ``group_size`` (newest last), each order in a group decayed by ``r_basket`` per position
  from the group's newest, groups decayed by ``r_group`` per group back; blended
  ``alpha * own + (1 - alpha) * mean of the k nearest shoppers' vectors`` (Euclidean distance,
  as the authors' code).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ml.data import IdIndex, Interactions
from ml.evaluation import ranking_metrics

TIFU_GRID = {
    "group_size": (3, 7, 15),
    "r_basket": (0.9, 1.0),
    "r_group": (0.6, 0.7, 0.8, 0.9),
    "k": (50, 150, 500),
    "alpha": (0.5, 0.7, 0.9),
}
REPEAT_WINDOWS = (3, 5, 10)


@dataclass
class ShopperOrders:
    """Each shopper's orders as item-index arrays, oldest first (rows of ``users``)."""

    users: np.ndarray
    orders: list[list[np.ndarray]]


def shopper_orders(
    interactions: Interactions, users: IdIndex, items: IdIndex, user_ids: np.ndarray
) -> ShopperOrders:
    """The orders of ``user_ids`` in ``interactions`` (purchases with an order id); items
    outside ``items`` are dropped, an order's start is its earliest line."""
    mask = interactions.order_mask()
    u = interactions.user_ids[mask].tolist()
    o = interactions.order_ids[mask].tolist()
    t = interactions.timestamps[mask].tolist()
    i = items.lookup(interactions.item_ids[mask]).tolist()
    baskets: dict[str, dict[str, tuple[float, set[int]]]] = {}
    for user, order, ts, item in zip(u, o, t, i, strict=True):
        per_user = baskets.setdefault(str(user), {})
        start, lines = per_user.get(order, (ts, set()))
        if item >= 0:
            lines.add(item)
        per_user[order] = (min(start, ts), lines)
    out = []
    for user in user_ids.tolist():
        got = sorted(baskets.get(str(user), {}).items(), key=lambda kv: (kv[1][0], kv[0]))
        out.append([np.array(sorted(lines), dtype=np.int64) for _, (_, lines) in got])
    return ShopperOrders(users=np.asarray(user_ids), orders=out)


def repeat_buy(history: ShopperOrders, n_items: int, k: int, window: int = 5) -> np.ndarray:
    """(n_users, k) top items by (orders among the last ``window`` holding it, orders holding
    it, orders since last bought); -1 padded when the shopper has fewer items."""
    out = np.full((len(history.orders), k), -1, dtype=np.int64)
    for r, orders in enumerate(history.orders):
        n = len(orders)
        stats: dict[int, list[int]] = {}
        for j, basket in enumerate(orders):
            recent = j >= n - window
            for item in basket.tolist():
                s = stats.setdefault(item, [0, 0, 0])
                s[0] += recent
                s[1] += 1
                s[2] = j
        ranked = sorted(stats, key=lambda i: (-stats[i][0], -stats[i][1], -stats[i][2], i))
        out[r, : min(k, len(ranked))] = ranked[:k]
    return out


def tifu_vectors(
    history: ShopperOrders, n_items: int, group_size: int, r_basket: float, r_group: float
) -> sp.csr_matrix:
    """(n_users, n_items) TIFU personal item-frequency vectors."""
    rows, cols, vals = [], [], []
    for r, orders in enumerate(history.orders):
        n = len(orders)
        if n == 0:
            continue
        n_groups = -(-n // group_size)
        # Groups are cut from the newest order back; the oldest group may be short.
        for j, basket in enumerate(orders):
            back = n - 1 - j
            g, pos = back // group_size, back % group_size
            size = min(group_size, n - g * group_size)
            w = (r_group**g) * (r_basket**pos) / size / n_groups
            rows.extend([r] * len(basket))
            cols.extend(basket.tolist())
            vals.extend([w] * len(basket))
    m = sp.csr_matrix((vals, (rows, cols)), shape=(len(history.orders), n_items))
    m.sum_duplicates()
    return m


def tifu_knn(
    history: ShopperOrders,
    n_items: int,
    k: int,
    *,
    group_size: int,
    r_basket: float,
    r_group: float,
    n_neighbors: int,
    alpha: float,
) -> np.ndarray:
    """(n_users, k) TIFU-KNN top items."""
    v = tifu_vectors(history, n_items, group_size, r_basket, r_group)
    return _blend_top(v, _neighbor_mean(v, nearest(v, n_neighbors)), alpha, k)


def _neighbor_mean(v: sp.csr_matrix, nn: np.ndarray) -> sp.csr_matrix:
    n_users, kk = nn.shape
    avg = sp.csr_matrix(
        (np.full(n_users * kk, 1.0 / max(kk, 1)), nn.ravel(), np.arange(0, n_users * kk + 1, kk)),
        shape=(n_users, v.shape[0]),
    )
    return (avg @ v).tocsr()


def _blend_top(v: sp.csr_matrix, mean: sp.csr_matrix, alpha: float, k: int) -> np.ndarray:
    """Top ``k`` of ``alpha * v + (1 - alpha) * mean`` per row (items no one bought: never)."""
    out = np.full((v.shape[0], k), -1, dtype=np.int64)
    for lo in range(0, v.shape[0], 500):
        hi = min(v.shape[0], lo + 500)
        score = (alpha * v[lo:hi] + (1.0 - alpha) * mean[lo:hi]).toarray()
        part = np.argpartition(-score, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(score, part, axis=1)
        order = np.lexsort((part, -vals), axis=1)
        top = np.take_along_axis(part, order, axis=1)
        out[lo:hi] = np.where(np.take_along_axis(vals, order, axis=1) > 0, top, -1)
    return out


def nearest(vectors: sp.csr_matrix, n_neighbors: int) -> np.ndarray:
    """(n_users, n) nearest other shoppers by Euclidean distance, nearest first."""
    n_users = vectors.shape[0]
    n = min(n_neighbors, n_users - 1)
    sq = np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel()
    out = np.zeros((n_users, n), dtype=np.int64)
    for lo in range(0, n_users, 1000):
        hi = min(n_users, lo + 1000)
        dot = (vectors[lo:hi] @ vectors.T).toarray()
        dist = sq[lo:hi, None] + sq[None, :] - 2.0 * dot
        dist[np.arange(hi - lo), np.arange(lo, hi)] = np.inf
        part = np.argpartition(dist, n - 1, axis=1)[:, :n]
        order = np.argsort(np.take_along_axis(dist, part, axis=1), axis=1, kind="stable")
        out[lo:hi] = np.take_along_axis(part, order, axis=1)
    return out


def tune_tifu(
    history: ShopperOrders, truth: sp.csr_matrix, n_items: int, k: int
) -> tuple[dict[str, float], float]:
    """Best TIFU-KNN parameters of :data:`TIFU_GRID` by NDCG@k against ``truth`` (rows aligned
    with ``history``), and that NDCG."""
    best: tuple[dict[str, float], float] = ({}, -1.0)
    for m, rb, rg in itertools.product(
        TIFU_GRID["group_size"], TIFU_GRID["r_basket"], TIFU_GRID["r_group"]
    ):
        v = tifu_vectors(history, n_items, m, rb, rg)
        nn_all = nearest(v, max(TIFU_GRID["k"]))
        for n_nb in TIFU_GRID["k"]:
            mean = _neighbor_mean(v, nn_all[:, :n_nb])
            for alpha in TIFU_GRID["alpha"]:
                top = _blend_top(v, mean, alpha, k)
                ndcg = ranking_metrics(top, truth, k, n_items)[f"ndcg@{k}"]
                if ndcg > best[1]:
                    params = {"group_size": m, "r_basket": rb, "r_group": rg}
                    best = ({**params, "n_neighbors": n_nb, "alpha": alpha}, ndcg)
    return best


def tune_repeat_buy(
    history: ShopperOrders, truth: sp.csr_matrix, n_items: int, k: int
) -> tuple[int, float]:
    """Best window of :data:`REPEAT_WINDOWS` by NDCG@k against ``truth``, and that NDCG."""
    scored = {
        w: ranking_metrics(repeat_buy(history, n_items, k, w), truth, k, n_items)[f"ndcg@{k}"]
        for w in REPEAT_WINDOWS
    }
    best = max(REPEAT_WINDOWS, key=lambda w: (scored[w], -abs(w - 5)))
    return best, scored[best]


def _top_sparse(score: sp.csr_matrix, k: int) -> np.ndarray:
    """(rows, k) column indices of each row's largest stored values (ties: lower index)."""
    out = np.full((score.shape[0], k), -1, dtype=np.int64)
    for r in range(score.shape[0]):
        lo, hi = score.indptr[r], score.indptr[r + 1]
        if hi == lo:
            continue
        cols, vals = score.indices[lo:hi], score.data[lo:hi]
        order = np.lexsort((cols, -vals))[:k]
        out[r, : len(order)] = cols[order]
    return out
