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

from ml.datasets.movielens import load_ml100k  # noqa: E402
from ml.datasets.synthetic import grocery_store  # noqa: E402
from ml.pipeline import TrainingConfig, train  # noqa: E402

METRICS = ("ndcg@10", "precision@10", "recall@10", "map@10", "coverage")


def print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    print(f"{'model':<14}" + "".join(f"{m:>14}" for m in METRICS))
    for name, values in rows.items():
        print(f"{name:<14}" + "".join(f"{values.get(m, float('nan')):>14.4f}" for m in METRICS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, default=DATA_DIR)
    args = parser.parse_args()

    interactions, catalog = load_ml100k(args.cache)
    t0 = time.perf_counter()
    result = train(interactions, catalog, TrainingConfig())
    seconds = time.perf_counter() - t0
    m = result.metrics
    print_table(
        f"MovieLens-100K, per-user time split ({m['als']['users']} test shoppers, "
        f"exclude_seen={m['exclude_seen']})",
        {"popularity": m["popularity"], "als (tuned)": m["als"], "als+rerank": m["reranker"]},
    )
    ratio = m["reranker"]["ndcg@10"] / m["als"]["ndcg@10"]
    print(f"re-ranker / tuned ALS NDCG@10 = {ratio:.3f}  (target >= 1.20)")
    print(f"chosen strategy: {m['final']['strategy']} ({m['final']['reason']})")
    print(f"ALS hyper-parameters: {m['hyperparams']} ({len(m['search_trials'])} trials)")
    print(f"training seconds (search + re-ranker + evaluation + final refit): {seconds:.1f}")

    interactions, catalog = grocery_store()
    t0 = time.perf_counter()
    result = train(interactions, catalog, TrainingConfig())
    seconds = time.perf_counter() - t0
    m = result.metrics
    print_table(
        f"Synthetic grocery store ({len(interactions)} purchases, {m['users']} shoppers, "
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


if __name__ == "__main__":
    main()
