"""Freshness: does re-scoring with a shopper's latest events beat the precomputed list?

Usage: ``python bench/freshness.py [--cache DIR] [--users 300] [--seed 0]``.

MovieLens-100K, per-user time split (the last 20% of each shopper's ratings are held out, as in
``bench/quality.py``); the production pipeline (``ml.pipeline.train``, default config) trains on
the rest. For a seeded sample of held-out shoppers, their held-out ratings are replayed one at a
time in time order; before each one the top-10 of

- **static**: the list fixed at training time (``recommend_for_user``), and
- **fresh**: ``recommend_fresh`` with the ratings replayed so far,

is scored against the ratings still to come (NDCG@10 and hit rate, binary relevance; mean over
steps per shopper, then over shoppers). Also times ``recommend_fresh`` on one core.
Prints numbers; never part of the test run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # "one core": set before numpy loads BLAS
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA_DIR = ROOT / ".data" / "datasets"

from ml.datasets.movielens import load_ml100k  # noqa: E402
from ml.evaluation import per_user_time_split  # noqa: E402
from ml.pipeline import TrainingConfig, train  # noqa: E402

K = 10
DISCOUNT = 1.0 / np.log2(np.arange(2, K + 2))


def ndcg_hit(recommended: list[str], relevant: set[str]) -> tuple[float, float]:
    """Binary-relevance NDCG@K and hit@K of one list."""
    gains = np.array([1.0 if i in relevant else 0.0 for i in recommended[:K]])
    gains = np.pad(gains, (0, K - len(gains)))
    ideal = DISCOUNT[: min(len(relevant), K)].sum()
    return float(gains @ DISCOUNT / ideal), float(gains.any())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, default=DATA_DIR)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    interactions, catalog = load_ml100k(args.cache)
    train_e, test_e = per_user_time_split(interactions, test_fraction=0.2, min_interactions=5)
    t0 = time.perf_counter()
    model = train(train_e, catalog, TrainingConfig()).model
    print(
        f"trained on {len(train_e)} ratings in {time.perf_counter() - t0:.1f} s; "
        f"strategy {model.strategy}, exclude_seen={not model.repeat_store}"
    )
    exclude_seen = not model.repeat_store

    users = sorted(set(test_e.user_ids.tolist()) & set(model.user_index.ids.tolist()))
    rng = np.random.default_rng(args.seed)
    sample = sorted(rng.choice(users, size=min(args.users, len(users)), replace=False).tolist())
    order = np.lexsort((np.arange(len(test_e)), test_e.timestamps, test_e.user_ids.astype(str)))
    by_user: dict[str, list[tuple[str, str, float, float]]] = {}
    for j in order.tolist():
        by_user.setdefault(str(test_e.user_ids[j]), []).append(
            (
                str(test_e.item_ids[j]),
                str(test_e.event_types[j]),
                float(test_e.timestamps[j]),
                float(test_e.values[j]),
            )
        )

    static_scores, fresh_scores, call_ms = [], [], []
    for user in sample:
        events = by_user[user]
        static = model.recommend_for_user(user, k=K, exclude_seen=exclude_seen).item_ids
        s_rows, f_rows = [], []
        for step in range(len(events)):
            remaining = {e[0] for e in events[step:]}
            t1 = time.perf_counter()
            fresh = model.recommend_fresh(user, events[:step], k=K, exclude_seen=exclude_seen)
            call_ms.append((time.perf_counter() - t1) * 1000)
            s_rows.append(ndcg_hit(static, remaining))
            f_rows.append(ndcg_hit(fresh.item_ids, remaining))
        static_scores.append(np.mean(s_rows, axis=0))
        fresh_scores.append(np.mean(f_rows, axis=0))

    s = np.mean(static_scores, axis=0)
    f = np.mean(fresh_scores, axis=0)
    n_steps = len(call_ms)
    print(f"\nMovieLens-100K replay: {len(sample)} shoppers, {n_steps} steps (seed {args.seed})")
    print(f"{'list':<10}{'ndcg@10':>10}{'hit@10':>10}")
    print(f"{'static':<10}{s[0]:>10.4f}{s[1]:>10.4f}")
    print(f"{'fresh':<10}{f[0]:>10.4f}{f[1]:>10.4f}")
    print(
        f"fresh / static NDCG@10 = {f[0] / s[0]:.3f}  (target >= 1.25); hit@10 = {f[1] / s[1]:.3f}"
    )
    ms = np.array(call_ms)
    print(
        f"recommend_fresh per call (one thread): mean {ms.mean():.2f} ms, "
        f"p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms "
        f"(target <= 3 ms; {model.n_items} items, {model.n_users} shoppers)"
    )


if __name__ == "__main__":
    main()
