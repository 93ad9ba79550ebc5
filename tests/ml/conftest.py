"""Shared fixtures for the engine tests: small synthetic stores and one trained model.

No database, no Django: these tests exercise ``ml`` only.
"""

from __future__ import annotations

import pytest

from ml.candidates.als import AlsParams
from ml.data import Catalog, Interactions
from ml.datasets.synthetic import synthetic_store
from ml.pipeline import TrainingConfig, TrainingResult, train


def fast_config(**changes: object) -> TrainingConfig:
    """Small, quick settings: no search, few ALS iterations."""
    base = TrainingConfig(
        search=False,
        search_trials=1,
        als=AlsParams(factors=16, iterations=4, regularization=0.05, alpha=2.0, weighting="bm25"),
        random_state=7,
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


@pytest.fixture(scope="session")
def small_store() -> tuple[Interactions, Catalog]:
    return synthetic_store(n_users=400, n_items=150, n_interactions=12_000, n_categories=8, seed=3)


@pytest.fixture(scope="session")
def trained(small_store: tuple[Interactions, Catalog]) -> TrainingResult:
    interactions, catalog = small_store
    return train(interactions, catalog, fast_config())
