"""Recommendation quality: MovieLens-100K and a synthetic repeat-purchase (grocery) store.

Usage: ``python bench/quality.py [--cache DIR]``. Everything is the production pipeline
(``ml.pipeline.train``): per-user time split (last 20% of each shopper's events are test),
hyper-parameters and the re-ranker learned on a split *inside* the training part, metrics on the
test part. Prints numbers; never part of the test run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Benches run as scripts (``python bench/x.py``): make the repo root importable.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA_DIR = ROOT / ".data" / "datasets"

import numpy as np  # noqa: E402

from ml.data import EventWeights, Interactions, build_index, build_user_item_table  # noqa: E402
from ml.datasets.movielens import load_ml100k  # noqa: E402
from ml.datasets.synthetic import grocery_store  # noqa: E402
from ml.evaluation import per_user_time_split, ranking_metrics, relevance_matrix  # noqa: E402
from ml.pipeline import TrainingConfig, train  # noqa: E402

EASE_LAMBDAS = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)

METRICS = ("ndcg@10", "precision@10", "recall@10", "map@10", "coverage")


def print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    print(f"{'model':<14}" + "".join(f"{m:>14}" for m in METRICS))
    for name, values in rows.items():
        print(f"{name:<14}" + "".join(f"{values.get(m, float('nan')):>14.4f}" for m in METRICS))


def ease_scores(
    fit_on: Interactions, score: Interactions, catalog: object, lam: float, k: int
) -> dict[str, float]:
    """EASE (Steck 2019): ``B = I - P / diag(P)`` with ``P = (XᵀX + λI)⁻¹`` on the binary
    shopper x item matrix of ``fit_on``; metrics of its top-``k`` (seen items excluded) against
    ``score``, with the same truth as the pipeline's evaluation.
    """
    users, items = build_index(fit_on, catalog)
    table = build_user_item_table(
        fit_on,
        users,
        items,
        EventWeights(),
        reference_ts=0,
        half_life_days=None,
        repeat_event=None,
    )
    x = table.csr("count", np.float64)
    x.data[:] = 1.0
    gram = (x.T @ x).toarray()
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)
    b[np.diag_indices_from(b)] = 0.0
    ids = np.array(sorted(set(score.user_ids.tolist())), dtype=str)
    rows = users.lookup(ids)
    ids, rows = ids[rows >= 0], rows[rows >= 0]
    truth = relevance_matrix(score, ids, users.lookup, items.lookup, len(items), exclude=table)
    s = x[rows] @ b
    s[x[rows].nonzero()] = -np.inf
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return ranking_metrics(top, truth, k, len(items))


def ease_tuned(interactions: Interactions, catalog: object, k: int) -> tuple[float, dict]:
    """λ chosen by validation NDCG on a per-user time split inside the training part, then
    refitted on the whole training part and scored on the test part (the pipeline's split).
    """
    train_e, test_e = per_user_time_split(interactions, test_fraction=0.2, min_interactions=5)
    inner, val = per_user_time_split(train_e, test_fraction=0.2, min_interactions=5)
    val_ndcg = {lam: ease_scores(inner, val, catalog, lam, k)[f"ndcg@{k}"] for lam in EASE_LAMBDAS}
    best = max(EASE_LAMBDAS, key=lambda lam: (val_ndcg[lam], -lam))
    return best, ease_scores(train_e, test_e, catalog, best, k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, default=DATA_DIR)
    args = parser.parse_args()

    interactions, catalog = load_ml100k(args.cache)
    t0 = time.perf_counter()
    result = train(interactions, catalog, TrainingConfig())
    seconds = time.perf_counter() - t0
    m = result.metrics
    lam, ease = ease_tuned(interactions, catalog, 10)
    print_table(
        f"MovieLens-100K, per-user time split ({m['als']['users']} test shoppers, "
        f"exclude_seen={m['exclude_seen']})",
        {
            "popularity": m["popularity"],
            "als (tuned)": m["als"],
            f"ease (λ={lam:g})": ease,
            "als+rerank": m["reranker"],
        },
    )
    ratio = m["reranker"]["ndcg@10"] / m["als"]["ndcg@10"]
    print(f"re-ranker / tuned ALS NDCG@10 = {ratio:.3f}")
    best = max(m["als"]["ndcg@10"], ease["ndcg@10"])
    print(
        f"re-ranker / max(tuned ALS, EASE) NDCG@10 = {m['reranker']['ndcg@10'] / best:.3f}"
        "  (target >= 1.20)"
    )
    print(f"chosen strategy: {m['final']['strategy']} ({m['final']['reason']})")
    print(f"ALS hyper-parameters: {m['hyperparams']} ({len(m['search_trials'])} trials)")
    print(f"training seconds (search + re-ranker + evaluation + final refit): {seconds:.1f}")

    interactions, catalog = grocery_store()
    blind = interactions.subset(np.arange(len(interactions)))
    blind.order_ids = np.full(len(blind), "", dtype=object)
    grocery = {}
    for label, events in (("orders known", interactions), ("orders unknown", blind)):
        t0 = time.perf_counter()
        result = train(events, catalog, TrainingConfig())
        seconds = time.perf_counter() - t0
        m = grocery[label] = result.metrics
        print_table(
            f"Synthetic grocery store, {label} ({len(events)} purchases, {m['users']} shoppers, "
            f"exclude_seen={m['exclude_seen']}, repeat share {m['repeat_share']:.2f})",
            {
                "popularity": m["popularity"],
                "buy-again": m.get("buy_again", {}),
                "als": m["als"],
                "als+rerank": m["reranker"],
            },
        )
        beat = m["reranker"]["ndcg@10"] > m.get("buy_again", {}).get("ndcg@10", float("inf"))
        print(f"re-ranker beats pure buy-again: {beat}")
        print(f"training seconds: {seconds:.1f}")
    known, unknown = (grocery[k]["reranker"]["ndcg@10"] for k in ("orders known", "orders unknown"))
    print(
        f"grocery re-ranker NDCG@10 with basket features {known:.4f}, without {unknown:.4f} "
        f"(x{known / unknown:.3f})"
    )


if __name__ == "__main__":
    main()
