"""Batch precompute throughput: ``recommend_for_users(k=100)`` shoppers per second.

Usage: ``python bench/precompute.py [--events N] [--chunk N]``. Trains once on a synthetic
store (50k shoppers, 10k items), then recommends for every shopper in chunks, as the nightly
precompute does. Target: >= 5,000 shoppers/s on 2 cores including re-ranking.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Benches run as scripts (``python bench/x.py``): make the repo root importable.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ml.datasets.synthetic import synthetic_store  # noqa: E402
from ml.pipeline import TrainingConfig, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=2_000)
    args = parser.parse_args()

    interactions, catalog = synthetic_store(
        n_users=50_000, n_items=10_000, n_interactions=args.events, seed=1
    )
    model = train(interactions, catalog, TrainingConfig(search=False)).model
    users = model.user_index.ids.tolist()
    print(f"model strategy={model.strategy}, {len(users):,} shoppers, {model.n_items:,} items")
    model.recommend_for_users(users[:500], k=100)  # warm-up
    for exclude_seen in (True, False):
        t0 = time.perf_counter()
        n = 0
        for start in range(0, len(users), args.chunk):
            recs = model.recommend_for_users(
                users[start : start + args.chunk], k=100, exclude_seen=exclude_seen
            )
            n += sum(1 for r in recs if len(r) == 100)
        seconds = time.perf_counter() - t0
        print(
            f"exclude_seen={exclude_seen}: {len(users):,} shoppers in {seconds:.1f} s -> "
            f"{len(users) / seconds:,.0f} shoppers/s (k=100; {n:,} full lists; target >= 5,000)"
        )
    cold = [f"new-shopper-{j}" for j in range(10_000)]
    t0 = time.perf_counter()
    model.recommend_for_users(cold, k=100)
    print(f"cold shoppers: {len(cold) / (time.perf_counter() - t0):,.0f} shoppers/s")


if __name__ == "__main__":
    main()
