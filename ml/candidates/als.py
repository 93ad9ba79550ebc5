"""Implicit-feedback ALS (implicit.cpu) and item-to-item neighbours from its factors."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.topk import topk
from implicit.nearest_neighbours import bm25_weight, tfidf_weight
from threadpoolctl import ThreadpoolController

from ml.sparse_utils import topk_rows

WEIGHTINGS = ("none", "bm25", "tfidf", "log")
_CONTROLLER: ThreadpoolController | None = None


def single_threaded_blas() -> contextlib.AbstractContextManager[object]:
    """Context limiting BLAS to one thread (the library scan is done once per process)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


# implicit marks filtered / missing slots with -FLT_MAX.
_FILTERED = -1e37


@dataclass
class AlsParams:
    """ALS hyper-parameters. ``weighting`` re-weights the confidence matrix before fitting:
    ``bm25``/``tfidf`` damp very popular items and heavy shoppers, ``log`` is ``log1p``.
    """

    factors: int = 64
    regularization: float = 0.05
    alpha: float = 2.0
    iterations: int = 15
    weighting: str = "bm25"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> AlsParams:
        return cls(
            factors=int(data.get("factors", 64)),
            regularization=float(data.get("regularization", 0.05)),
            alpha=float(data.get("alpha", 2.0)),
            iterations=int(data.get("iterations", 15)),
            weighting=str(data.get("weighting", "bm25")),
        )


def weight_matrix(user_items: sp.csr_matrix, weighting: str) -> sp.csr_matrix:
    """Apply ``weighting`` (one of ``WEIGHTINGS``) to a shopper x item confidence matrix."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown ALS weighting {weighting!r}; expected one of {WEIGHTINGS}")
    m = user_items.astype(np.float32)
    if weighting == "none" or m.nnz == 0:
        return m.tocsr()
    if weighting == "log":
        m = m.copy()
        m.data = np.log1p(m.data)
        return m.tocsr()
    # implicit's weightings work row-wise on an item x user matrix.
    item_users = m.T.tocsr()
    fn = bm25_weight(item_users, K1=100, B=0.8) if weighting == "bm25" else tfidf_weight(item_users)
    return sp.csr_matrix(fn.T, dtype=np.float32)


def fit_als(
    user_items: sp.csr_matrix, params: AlsParams, *, random_state: int = 0, num_threads: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ALS on a shopper x item confidence matrix; returns (user_factors, item_factors).

    Both are float32 C-contiguous arrays with ``params.factors`` columns. Shoppers or items with
    no cells get (near-)zero factors.
    """
    m = weight_matrix(user_items, params.weighting)
    # implicit parallelises over rows itself; a multi-threaded BLAS underneath (numpy imported
    # before ``ml`` set OPENBLAS_NUM_THREADS) oversubscribes the cores and is several times
    # slower, so BLAS is held to one thread for the fit whatever the environment says (implicit
    # checks, and warns, when the model is constructed).
    with single_threaded_blas():
        model = AlternatingLeastSquares(
            factors=int(params.factors),
            regularization=float(params.regularization),
            alpha=float(params.alpha),
            iterations=int(params.iterations),
            random_state=random_state,
            num_threads=num_threads,
        )
        model.fit(m, show_progress=False)
    return (
        np.ascontiguousarray(model.user_factors, dtype=np.float32),
        np.ascontiguousarray(model.item_factors, dtype=np.float32),
    )


def als_topk(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    k: int,
    filter_csr: sp.csr_matrix | None = None,
    *,
    max_cells: int = 4_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` items per query row by dot product, best first (ties: lower index first).

    ``filter_csr`` (rows aligned with ``user_factors``) removes items per row. Slots with no
    item are -1 / ``-inf``. Dense scoring in row blocks of ``max_cells`` scores; for serving
    batches this beats implicit's topk, whose per-call set-up dominates at these sizes.
    """
    n_q, n_items = len(user_factors), item_factors.shape[0]
    k = min(k, n_items)
    ids = np.full((n_q, k), -1, dtype=np.int64)
    scores = np.full((n_q, k), -np.inf)
    if k == 0 or n_q == 0:
        return ids, scores
    block = max(1, max_cells // max(n_items, 1))
    for start in range(0, n_q, block):
        stop = min(n_q, start + block)
        s = user_factors[start:stop] @ item_factors.T
        if filter_csr is not None:
            f = filter_csr[start:stop]
            rows = np.repeat(np.arange(stop - start), np.diff(f.indptr))
            s[rows, f.indices] = -np.inf
        ids[start:stop], scores[start:stop] = topk_rows(s, k)
    return ids, scores


def normalized(factors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    return (factors / np.where(norms > 0, norms, 1.0)).astype(np.float32, copy=False)


def item_neighbors(
    item_unit: np.ndarray, k: int, *, usable: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(n_items, k) nearest items by cosine of unit vectors, excluding the item itself.

    ``usable`` (bool per item) restricts which items may appear as neighbours (e.g. items with
    enough events for their factors to mean something). Missing slots are -1 / 0.0.
    """
    n = item_unit.shape[0]
    k_eff = min(k + 1, n)
    if n == 0 or k_eff == 0:
        return np.full((n, k), -1, np.int32), np.zeros((n, k), np.float32)
    filter_items = None if usable is None else np.flatnonzero(~usable).astype(np.int32)
    ids, scores = topk(item_unit, item_unit, k_eff, filter_items=filter_items)
    ids = ids.astype(np.int64)
    scores = scores.astype(np.float64)
    invalid = (scores < _FILTERED) | (ids == np.arange(n)[:, None])
    ids[invalid] = -1
    # Drop the self slot while keeping order: stable sort puts valid entries first.
    order = np.argsort(ids < 0, axis=1, kind="stable")
    ids = np.take_along_axis(ids, order, axis=1)[:, :k]
    scores = np.take_along_axis(np.where(invalid, 0.0, scores), order, axis=1)[:, :k]
    out_ids = np.full((n, k), -1, np.int32)
    out_scores = np.zeros((n, k), np.float32)
    out_ids[:, : ids.shape[1]] = ids
    out_scores[:, : scores.shape[1]] = np.where(ids >= 0, scores, 0.0)
    return out_ids, out_scores
