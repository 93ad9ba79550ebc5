"""Random search over ALS hyper-parameters on a validation split, budgeted by trials.

The split handed in must come from training data only; the test split of the evaluation never
reaches this module.

Sampling rule for big stores: the trials fit on at most :data:`SEARCH_MAX_EVENTS` events. Above
that, every validation shopper is kept and the other
shoppers are sampled (seeded, all of a shopper's events or none) down to the budget: the trials
then rank parameter settings on a fixed-size sample, so the search costs the same time and memory
at 5M and at 50M events, and the chosen setting is fitted on all the data afterwards (factors of
a sample are not reused).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ml.candidates.als import AlsParams, als_topk, fit_als
from ml.data import EventWeights, IdIndex, Interactions, build_user_item_table
from ml.evaluation import ranking_metrics

SEARCH_MAX_EVENTS = 2_000_000

GRID: dict[str, list[object]] = {
    "factors": [32, 64, 128],
    "regularization": [0.01, 0.05, 0.1, 0.3],
    "alpha": [1.0, 2.0, 5.0, 10.0],
    "iterations": [10, 15, 20],
    "weighting": ["bm25", "none", "log", "tfidf"],
    "half_life_days": [None, 30.0, 90.0, 365.0],
}


@dataclass
class SearchResult:
    """Best parameters, their validation score, factors fitted on the search's training part
    (reusable when the same data is fitted again) and every trial for the report.
    """

    params: AlsParams
    half_life_days: float | None
    score: float
    factors: tuple[np.ndarray, np.ndarray] | None
    trials: list[dict[str, object]] = field(default_factory=list)


def search_als(
    train: Interactions,
    user_index: IdIndex,
    item_index: IdIndex,
    truth: sp.csr_matrix,
    truth_users: np.ndarray,
    *,
    weights: EventWeights,
    default: AlsParams,
    default_half_life: float | None,
    k: int,
    exclude_seen: bool,
    trials: int,
    enabled: bool = True,
    random_state: int = 0,
    reference_ts: int,
    max_events: int = SEARCH_MAX_EVENTS,
) -> SearchResult:
    """Try ``default`` first, then distinct random grid points, ``trials`` fits in all (just
    the default when ``enabled`` is False).

    Each trial fits ALS on ``train`` (indexed by ``user_index``/``item_index``) and scores
    NDCG@k of the ALS top-k for ``truth_users`` (model rows) against ``truth`` (rows aligned with
    ``truth_users``). Deterministic for a given ``random_state``: the same trials on any
    machine, however fast. Above ``max_events`` events the trials fit on a sample of shoppers
    (module docstring) and ``factors`` is None.
    """
    rng = random.Random(random_state)
    candidates: list[tuple[AlsParams, float | None]] = [(default, default_half_life)]
    if enabled:
        seen = {_key(default, default_half_life)}
        for _ in range(200):
            p = AlsParams(
                factors=int(rng.choice(GRID["factors"])),
                regularization=float(rng.choice(GRID["regularization"])),
                alpha=float(rng.choice(GRID["alpha"])),
                iterations=int(rng.choice(GRID["iterations"])),
                weighting=str(rng.choice(GRID["weighting"])),
            )
            hl = rng.choice(GRID["half_life_days"])
            key = _key(p, hl)
            if key not in seen:
                seen.add(key)
                candidates.append((p, hl))
    best: SearchResult | None = None
    user_of_event = user_index.lookup_column(train, "user_ids")
    known = user_of_event >= 0
    per_row = np.bincount(user_of_event[known], minlength=len(user_index))
    rows = _sample_rows(per_row, truth_users, max_events, random_state)
    sampled_truth_users = truth_users
    if len(rows) < len(user_index):
        chosen = np.zeros(len(user_index), dtype=bool)
        chosen[rows] = True
        train = train.subset(known & chosen[np.where(known, user_of_event, 0)])
        sampled_truth_users = np.searchsorted(rows, truth_users)
    del user_of_event, known, per_row
    # One matrix at a time: trials come grouped by nothing, so the last one is kept for reuse
    # (the default and its neighbours share a half-life more often than not).
    table: tuple[float | None, sp.csr_matrix] | None = None
    for params, hl in candidates[: max(1, int(trials))]:
        t0 = time.perf_counter()
        if table is None or table[0] != hl:
            table = None
            matrix = build_user_item_table(
                train,
                user_index,
                item_index,
                weights,
                reference_ts=reference_ts,
                half_life_days=hl,
                repeat_event=None,
            ).csr("weight")
            if len(rows) < matrix.shape[0]:
                matrix = matrix[rows]
            table = (hl, matrix)
        matrix = table[1]
        user_f, item_f = fit_als(matrix, params, random_state=random_state)
        seen_rows = matrix[sampled_truth_users] if exclude_seen else None
        recs, _ = als_topk(user_f[sampled_truth_users], item_f, k, seen_rows)
        score = ranking_metrics(recs, truth, k, len(item_index))[f"ndcg@{k}"]
        took = time.perf_counter() - t0
        trial = {**params.to_dict(), "half_life_days": hl, f"ndcg@{k}": round(score, 5)}
        trial["seconds"] = round(took, 2)
        if best is None or score > best.score:
            factors = (user_f, item_f) if len(rows) == len(user_index) else None
            best = SearchResult(params, hl, score, factors, best.trials if best else [])
        best.trials.append(trial)
    assert best is not None  # the default always runs
    return best


def _sample_rows(
    per_row: np.ndarray, keep: np.ndarray, budget: int, random_state: int
) -> np.ndarray:
    """Sorted rows to search on, given each row's event count: all of them within ``budget``
    events, else the ``keep`` rows and a seeded random sample of the others, whole rows, up to
    ``budget`` events in all (the ``keep`` rows always, even beyond it)."""
    n_rows = len(per_row)
    if int(per_row.sum()) <= budget:
        return np.arange(n_rows)
    kept = np.zeros(n_rows, dtype=bool)
    kept[keep] = True
    left = budget - int(per_row[kept].sum())
    shuffled = np.random.default_rng(random_state).permutation(np.flatnonzero(~kept))
    take = int(np.searchsorted(np.cumsum(per_row[shuffled]), max(left, 0), side="right"))
    kept[shuffled[:take]] = True
    return np.flatnonzero(kept)


def _key(p: AlsParams, hl: float | None) -> tuple[object, ...]:
    return (p.factors, p.regularization, p.alpha, p.iterations, p.weighting, hl)
