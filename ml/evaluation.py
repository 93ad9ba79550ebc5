"""Per-user time split and exact top-k ranking metrics.

Conventions (shared by the pipeline and the benches so numbers are comparable):

* A recommendation list is a row of item indices, best first, padded with -1.
* ``precision@k = hits / k`` (k fixed, even when fewer than k items were returned);
  ``recall@k = hits / |relevant|``; ``NDCG@k`` uses binary gains ``1 / log2(rank + 1)`` and the
  ideal DCG of ``min(|relevant|, k)`` hits; ``MAP@k = sum_{hits at rank r} precision@r /
  min(|relevant|, k)``. Users with no relevant item are skipped.
* ``coverage`` = distinct items recommended in anyone's top k / catalog size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from ml.data import Interactions, UserItemTable, lookup_coded
from ml.sparse_utils import csr_gather


def per_user_time_split(
    interactions: Interactions, *, test_fraction: float = 0.2, min_interactions: int = 5
) -> tuple[Interactions, Interactions]:
    """Split each shopper's events by time: the last ``test_fraction`` go to test.

    A shopper with ``n >= min_interactions`` events contributes
    ``max(1, floor(n * test_fraction + 0.5))`` of their latest events to test (ties in time keep
    input order); shoppers with fewer events stay entirely in train. Returns (train, test).
    """
    n = len(interactions)
    if n == 0:
        return interactions, interactions
    user_codes, _ = interactions.codes("user_ids")
    order = np.lexsort((np.arange(n), interactions.timestamps, user_codes))
    codes_sorted = user_codes[order]
    counts = np.bincount(user_codes)
    starts = np.cumsum(counts) - counts
    pos = np.arange(n) - starts[codes_sorted]
    n_user = counts[codes_sorted]
    n_test = np.maximum(1, np.floor(n_user * test_fraction + 0.5)).astype(np.int64)
    is_test_sorted = (n_user >= min_interactions) & (pos >= n_user - n_test)
    is_test = np.zeros(n, dtype=bool)
    is_test[order] = is_test_sorted
    return interactions.subset(~is_test), interactions.subset(is_test)


def per_user_last_order_split(
    interactions: Interactions, *, min_orders: int = 2
) -> tuple[Interactions, Interactions]:
    """Split each shopper's events at the start of their last order: next-basket evaluation.

    Orders are the shopper's purchases sharing an order id, starting at their earliest line; a
    shopper with at least ``min_orders`` orders contributes every event from the start of their
    latest order on (that whole order, and anything else they did from then) to test; the
    others stay entirely in train. Returns (train, test).
    """
    n = len(interactions)
    in_order = interactions.order_mask() if n else np.zeros(0, dtype=bool)
    if not in_order.any():
        return interactions, interactions.subset(np.zeros(n, dtype=bool))
    user_codes, user_vocab = interactions.codes("user_ids")
    order_codes, order_vocab = interactions.codes("order_ids")
    idx = np.flatnonzero(in_order)
    pair = user_codes[idx].astype(np.int64) * len(order_vocab) + order_codes[idx]
    _, key = np.unique(pair, return_inverse=True)
    key = key.reshape(-1)
    n_keys = int(key.max()) + 1
    timestamps = interactions.timestamps
    start = np.full(n_keys, np.inf)
    np.minimum.at(start, key, timestamps[idx].astype(np.float64))
    key_user = np.zeros(n_keys, dtype=np.int64)
    key_user[key] = user_codes[idx]
    n_orders = np.bincount(key_user, minlength=len(user_vocab))
    last_start = np.full(len(user_vocab), -np.inf)
    np.maximum.at(last_start, key_user, start)
    last_start[n_orders < min_orders] = np.inf
    is_test = timestamps >= last_start[user_codes]
    return interactions.subset(~is_test), interactions.subset(is_test)


def first_event_times(test: Interactions, user_ids: np.ndarray) -> np.ndarray:
    """Per entry of ``user_ids``: the time (unix seconds, float) of their first ``test`` event,
    the moment their held-out future starts and so the time a prediction for it is made
    (NaN for users without test events)."""
    codes, vocab = test.codes("user_ids")
    first = np.full(len(vocab), np.inf)
    np.minimum.at(first, codes, test.timestamps.astype(np.float64))
    pos = {str(u): j for j, u in enumerate(vocab.tolist())}
    out = np.array([first[pos[u]] if u in pos else np.nan for u in map(str, user_ids)])
    return np.where(np.isfinite(out), out, np.nan)


def ranking_metrics(
    recommended: np.ndarray, relevant: sp.csr_matrix, k: int, n_catalog_items: int
) -> dict[str, float]:
    """Mean precision/recall/NDCG/MAP at ``k`` and catalog coverage.

    ``recommended`` is (n_users, >= k) item indices (-1 padded); row r is scored against row r
    of ``relevant`` (binary CSR, n_users x n_items). Users whose relevant row is empty are
    skipped; ``users`` in the result counts the users scored.
    """
    recs = np.asarray(recommended, dtype=np.int64)[:, :k]
    if recs.shape[1] < k:
        recs = np.pad(recs, ((0, 0), (0, k - recs.shape[1])), constant_values=-1)
    relevant = sp.csr_matrix(relevant)
    relevant.sort_indices()
    n_rel = np.diff(relevant.indptr)
    scored = n_rel > 0
    result = {
        f"precision@{k}": 0.0,
        f"recall@{k}": 0.0,
        f"ndcg@{k}": 0.0,
        f"map@{k}": 0.0,
        "coverage": 0.0,
        "users": int(scored.sum()),
    }
    if n_catalog_items > 0:
        shown = np.unique(recs[scored])
        result["coverage"] = float((shown >= 0).sum() / n_catalog_items)
    if not scored.any():
        return result
    # A repeated item in one list counts once: only its first position can hit.
    first = np.ones_like(recs, dtype=bool)
    for j in range(1, k):
        first[:, j] = ~(recs[:, :j] == recs[:, j : j + 1]).any(axis=1)
    rows = np.broadcast_to(np.arange(len(recs))[:, None], recs.shape)
    ones = np.ones(relevant.nnz)
    hit = csr_gather(
        relevant.indptr, relevant.indices, ones, relevant.shape[1], rows.ravel(), recs.ravel()
    ).reshape(recs.shape)
    hit = (hit > 0) & first & (recs >= 0)
    hit = hit[scored]
    n_rel_s = n_rel[scored].astype(np.float64)
    hits = hit.sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hit * discounts).sum(axis=1)
    ideal_len = np.minimum(n_rel_s, k).astype(np.int64)
    idcg = np.cumsum(discounts)[ideal_len - 1]
    prec_at = np.cumsum(hit, axis=1) / np.arange(1, k + 1)
    ap = (prec_at * hit).sum(axis=1) / np.minimum(n_rel_s, k)
    result[f"precision@{k}"] = float(np.mean(hits / k))
    result[f"recall@{k}"] = float(np.mean(hits / n_rel_s))
    result[f"ndcg@{k}"] = float(np.mean(dcg / idcg))
    result[f"map@{k}"] = float(np.mean(ap))
    return result


def evaluate_lists(
    recommended: Sequence[Sequence[str]],
    relevant: Sequence[set[str] | Sequence[str]],
    k: int,
    n_catalog_items: int,
) -> dict[str, float]:
    """:func:`ranking_metrics` over string ids (for callers and tests without indices)."""
    vocab: dict[str, int] = {}
    for row in list(recommended) + [list(r) for r in relevant]:
        for item in row:
            vocab.setdefault(str(item), len(vocab))
    recs = np.full((len(recommended), k), -1, dtype=np.int64)
    for r, row in enumerate(recommended):
        ids = [vocab[str(x)] for x in list(row)[:k]]
        recs[r, : len(ids)] = ids
    rows, cols = [], []
    for r, rel in enumerate(relevant):
        for item in set(map(str, rel)):
            rows.append(r)
            cols.append(vocab[item])
    truth = sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(relevant), max(len(vocab), 1))
    )
    return ranking_metrics(recs, truth, k, n_catalog_items)


def relevance_matrix(
    test: Interactions,
    user_ids: np.ndarray,
    user_index_lookup: Callable[[Iterable[object]], np.ndarray],
    item_index_lookup: Callable[[Iterable[object]], np.ndarray],
    n_items: int,
    *,
    exclude: UserItemTable | None = None,
) -> sp.csr_matrix:
    """Binary (len(user_ids), n_items + 1) CSR of each user's test items.

    Column ``n_items`` collects test items the model never saw (they can never be hit but still
    count in recall's and NDCG's denominators). With ``exclude`` (the training table, rows in
    the same user order as ``user_ids`` via ``user_index_lookup``), items the shopper already
    interacted with in training are removed: with ``exclude_seen`` they cannot be recommended,
    so the test measures discovery of new items.
    """
    pos = {u: r for r, u in enumerate(user_ids.tolist())}
    user_codes, user_vocab = test.codes("user_ids")
    rows = lookup_coded(
        lambda ids: np.fromiter((pos.get(str(u), -1) for u in ids), dtype=np.int64),
        user_codes,
        user_vocab,
    )
    cols = lookup_coded(item_index_lookup, *test.codes("item_ids"))
    keep = rows >= 0
    rows, cols = rows[keep], cols[keep]
    unknown_items = cols < 0
    if exclude is not None and len(rows):
        model_rows = user_index_lookup(user_ids)[rows]
        seen = csr_gather(
            exclude.indptr,
            exclude.indices,
            np.ones(exclude.nnz),
            exclude.shape[1],
            model_rows,
            np.where(unknown_items, -1, cols),
        )
        keep2 = seen == 0
        rows, cols, unknown_items = rows[keep2], cols[keep2], unknown_items[keep2]
    # Distinct unknown items of a user must stay distinct in the denominator: give each its
    # own pseudo-column beyond n_items.
    cols = cols.copy()
    if unknown_items.any():
        test_items = test.codes("item_ids")[0][keep]
        if exclude is not None:
            test_items = test_items[keep2]
        _, codes = np.unique(test_items[unknown_items], return_inverse=True)
        codes = codes.reshape(-1)
        cols[unknown_items] = n_items + codes
        width = n_items + int(codes.max()) + 1
    else:
        width = n_items + 1
    m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(user_ids), width))
    m.data[:] = 1.0
    m.sort_indices()
    return m
