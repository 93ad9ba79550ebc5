"""Wall time of the full training pipeline (search, re-ranker, evaluation, final refit).

Usage: ``python bench/training.py [--cache DIR] [--events N]``. Targets on 2 cores:
MovieLens-100K < 30 s, a 1M-event synthetic store < 60 s.
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
from ml.datasets.synthetic import synthetic_store  # noqa: E402
from ml.pipeline import TrainingConfig, train  # noqa: E402


def _run(name: str, interactions, catalog, target: float) -> None:
    t0 = time.perf_counter()
    result = train(interactions, catalog, TrainingConfig())
    seconds = time.perf_counter() - t0
    m = result.metrics
    print(
        f"{name}: {len(interactions):,} events, {m['users']:,} shoppers, {m['items']:,} items -> "
        f"{seconds:.1f} s (target < {target:.0f} s) strategy={m['final']['strategy']} "
        f"NDCG@10 final={m['final']['ndcg@10']:.4f} popularity={m['popularity']['ndcg@10']:.4f}"
    )
    shown = {"popularity": "popularity", "als": "als", "reranker": "als+rerank"}
    pairs = [
        f"{label} {m['validation'][strategy]:.4f} / {m[label]['ndcg@10']:.4f}"
        for label, strategy in shown.items()
        if label in m and strategy in m.get("validation", {})
    ]
    print(f"  NDCG@10 validation / test ({m.get('split')} split): {', '.join(pairs)}")
    print(f"  search trials: {len(m['search_trials'])}; stage seconds: {m['timings']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, default=DATA_DIR)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()

    interactions, catalog = load_ml100k(args.cache)
    _run("MovieLens-100K", interactions, catalog, 30)

    t0 = time.perf_counter()
    interactions, catalog = synthetic_store(
        n_users=50_000, n_items=10_000, n_interactions=args.events, seed=1
    )
    print(f"(generated synthetic store in {time.perf_counter() - t0:.1f} s, not counted)")
    _run("Synthetic store", interactions, catalog, 60)


if __name__ == "__main__":
    main()
