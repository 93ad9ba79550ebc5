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

from bench.next_basket import (  # noqa: E402
    repeat_buy,
    shopper_orders,
    tifu_knn,
    tune_repeat_buy,
    tune_tifu,
)
from ml.data import EventWeights, Interactions, build_index, build_user_item_table  # noqa: E402
from ml.datasets.movielens import load_ml100k  # noqa: E402
from ml.datasets.synthetic import grocery_store  # noqa: E402
from ml.evaluation import (  # noqa: E402
    first_event_times,
    per_user_last_order_split,
    per_user_time_split,
    ranking_metrics,
    relevance_matrix,
)
from ml.pipeline import TrainingConfig, train  # noqa: E402

# The grocery store of the next-basket benchmark, pinned (README: "Recommendation quality").
GROCERY = {"n_users": 2_000, "n_items": 10_000, "n_categories": 100, "max_orders": 100, "seed": 7}
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


def grocery_bench() -> None:
    """Next-basket prediction on the synthetic grocery store: each shopper's last order, seen
    items allowed, the engine (production pipeline) against TIFU-KNN and repeat-buy tuned on
    the last order inside the training part."""
    k = 10
    t0 = time.perf_counter()
    interactions, catalog = grocery_store(**GROCERY)
    generated = time.perf_counter() - t0
    train_part, test_part = per_user_last_order_split(interactions)
    t0 = time.perf_counter()
    result = train(train_part, catalog, TrainingConfig())
    seconds = time.perf_counter() - t0
    m, model = result.metrics, result.model
    users = np.array(sorted(set(test_part.user_ids.tolist())), dtype=str)
    users = users[model.user_index.lookup(users) >= 0]
    rows = model.user_index.lookup(users)
    as_of = first_event_times(test_part, users)
    truth = relevance_matrix(
        test_part, users, model.user_index.lookup, model.item_index.lookup, model.n_items
    )
    n_items = model.n_items
    table: dict[str, dict[str, float]] = {}
    for strategy in ("popularity", "als", "als+rerank"):
        if strategy == "als+rerank" and model.booster is None:
            continue
        recs, _ = model.with_strategy(strategy).recommend_indices(
            rows, k, exclude_seen=False, as_of=as_of
        )
        table[f"engine {strategy}"] = ranking_metrics(recs, truth, k, n_items)
    served = model.strategy

    # Baselines: tuned on each shopper's last order inside the training part.
    inner, val = per_user_last_order_split(train_part)
    val_users = np.array(sorted(set(val.user_ids.tolist())), dtype=str)
    val_truth = relevance_matrix(
        val, val_users, model.user_index.lookup, model.item_index.lookup, n_items
    )
    val_hist = shopper_orders(inner, model.user_index, model.item_index, val_users)
    window, rb_val = tune_repeat_buy(val_hist, val_truth, n_items, k)
    tifu_params, tifu_val = tune_tifu(val_hist, val_truth, n_items, k)
    hist = shopper_orders(train_part, model.user_index, model.item_index, users)
    table[f"repeat-buy (w={window})"] = ranking_metrics(
        repeat_buy(hist, n_items, k, window), truth, k, n_items
    )
    table["tifu-knn"] = ranking_metrics(
        tifu_knn(hist, n_items, k, **tifu_params), truth, k, n_items
    )
    print_table(
        f"Synthetic grocery store {GROCERY}: {len(interactions):,} purchases, "
        f"{m['users']:,} shoppers, {len(users):,} last baskets predicted (seen items allowed, "
        f"repeat share {m['repeat_share']:.2f}; generated in {generated:.1f} s)",
        table,
    )
    engine = table[f"engine {served}"]["ndcg@10"]
    tifu = table["tifu-knn"]["ndcg@10"]
    repeat = table[f"repeat-buy (w={window})"]["ndcg@10"]
    print(
        f"validation NDCG@10: engine {m['validation']} (its own inner split), tifu-knn "
        f"{tifu_val:.4f} {tifu_params} and repeat-buy {rb_val:.4f} (last order inside the "
        "training part)"
    )
    print(f"engine ({served}) / TIFU-KNN NDCG@10 = {engine / tifu:.3f}  (target >= 1.04)")
    print(f"engine ({served}) / repeat-buy NDCG@10 = {engine / repeat:.3f}")
    print(f"TIFU-KNN / repeat-buy NDCG@10 = {tifu / repeat:.3f}")
    print(f"engine training seconds: {seconds:.1f} ({len(m['search_trials'])} search trials)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, default=DATA_DIR)
    parser.add_argument("--only", choices=("movielens", "grocery"), default=None)
    args = parser.parse_args()
    if args.only != "movielens":
        grocery_bench()
    if args.only == "grocery":
        return

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
    print(
        "validation NDCG@10 (inner split, what the strategy was chosen on): "
        + ", ".join(f"{name} {value:.4f}" for name, value in m["validation"].items())
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


if __name__ == "__main__":
    main()
