"""Candidate against active model on the same recent window (ml.comparison)."""

from __future__ import annotations

import numpy as np
import pytest

from ml.candidates.als import AlsParams
from ml.comparison import compare_on_recent_window
from ml.data.cleaning import drop_duplicate_events
from ml.evaluation import per_user_time_split
from ml.model import FitOptions, fit_model
from ml.pipeline import train
from tests.ml.conftest import fast_config


@pytest.fixture(scope="module")
def cut(small_store):
    """The store as the active model saw it (its first 70% of time) and the cut-off."""
    interactions, _ = small_store
    until = int(np.quantile(interactions.timestamps, 0.7))
    return interactions.subset(interactions.timestamps <= until), until


@pytest.fixture(scope="module")
def active(small_store, cut):
    earlier, _ = cut
    return train(earlier, small_store[1], fast_config()).model


def _window_after(interactions, until, config):
    """The candidate's held-out events after `until`, computed here independently."""
    _, held_out = per_user_time_split(
        drop_duplicate_events(interactions)[0],
        test_fraction=config.test_fraction,
        min_interactions=config.min_user_interactions,
    )
    return held_out.subset(held_out.timestamps > until)


def test_the_window_holds_only_held_out_events_the_active_model_never_saw(
    small_store, trained, active, cut
):
    # given a candidate trained on everything (a repeat store: seen items count) and an active
    # model trained up to `until`
    interactions, catalog = small_store
    _, until = cut
    config = fast_config()
    assert trained.model.repeat_store is True

    # when both are scored on the recent window
    result = compare_on_recent_window(
        interactions,
        catalog,
        candidate=trained.model,
        active=active,
        active_until=until,
        config=config,
    )

    # then the window is exactly the candidate's held-out split after `until`
    after = _window_after(interactions, until, config)
    assert result.since == until
    assert result.shoppers == len(set(after.user_ids.tolist()))
    assert result.events == len(after)
    assert result.candidate["users"] == result.active["users"] == result.shoppers
    assert 0.0 < result.candidate["ndcg@10"] <= 1.0
    assert 0.0 < result.active["ndcg@10"] <= 1.0


def test_with_seen_items_excluded_only_shoppers_with_something_new_are_scored(
    small_store, trained, active, cut
):
    # given the same candidate serving with seen items excluded
    interactions, catalog = small_store
    _, until = cut
    config = fast_config()
    candidate = trained.model.with_strategy(trained.model.strategy)
    candidate.meta["repeat_store"] = False

    result = compare_on_recent_window(
        interactions,
        catalog,
        candidate=candidate,
        active=active,
        active_until=until,
        config=config,
    )

    # then a shopper counts only when a window item is not in their history
    after = _window_after(interactions, until, config)

    def keys(events):
        columns = (events.user_ids, events.item_ids, events.event_types, events.timestamps)
        return list(zip(*(c.tolist() for c in columns), strict=True))

    window_keys = set(keys(after))
    had: dict[str, set[str]] = {}
    for user, item, kind, ts in keys(interactions):
        if (user, item, kind, ts) not in window_keys:
            had.setdefault(user, set()).add(item)
    new: dict[str, set[str]] = {}
    for user, item in zip(after.user_ids.tolist(), after.item_ids.tolist(), strict=True):
        if item not in had.get(user, set()):
            new.setdefault(user, set()).add(item)
    assert result.shoppers == len(new)
    assert 0 < result.shoppers < len(set(after.user_ids.tolist()))


def test_a_better_recipe_scores_higher_and_a_worse_one_lower(small_store, trained, active, cut):
    interactions, catalog = small_store
    _, until = cut
    config = fast_config()
    # given an active model serving popularity only, the trained candidate beats it
    against_popularity = compare_on_recent_window(
        interactions,
        catalog,
        candidate=trained.model,
        active=active.with_strategy("popularity"),
        active_until=until,
        config=config,
    )
    assert against_popularity.candidate["ndcg@10"] > against_popularity.active["ndcg@10"] + 0.02

    # given a crippled recipe (2 factors, 1 iteration, no re-ranker) against the trained
    # active model, the candidate loses, although it has more recent data
    crippled = fit_model(
        interactions,
        catalog,
        FitOptions(als=AlsParams(factors=2, iterations=1, regularization=50.0), random_state=7),
    )
    crippled.meta["repeat_store"] = trained.model.repeat_store
    against_crippled = compare_on_recent_window(
        interactions,
        catalog,
        candidate=crippled,
        active=active,
        active_until=until,
        config=config,
    )
    assert against_crippled.candidate["ndcg@10"] < against_crippled.active["ndcg@10"] - 0.02
    # the same shoppers and events both times
    assert against_crippled.shoppers == against_popularity.shoppers
    assert against_crippled.events == against_popularity.events


def test_nothing_to_compare_without_a_window_or_with_a_popularity_candidate(
    small_store, trained, active, cut
):
    interactions, catalog = small_store
    _, until = cut
    newest = int(interactions.timestamps.max())
    common = {"active": active, "config": fast_config()}

    too_soon = compare_on_recent_window(
        interactions, catalog, candidate=trained.model, active_until=newest, **common
    )
    popularity = compare_on_recent_window(
        interactions,
        catalog,
        candidate=trained.model.with_strategy("popularity"),
        active_until=until,
        **common,
    )

    assert too_soon is None
    assert popularity is None


def test_scoring_is_deterministic_and_leaves_both_models_alone(small_store, trained, active, cut):
    interactions, catalog = small_store
    _, until = cut
    before = (trained.model.strategy, trained.model.reference_ts, active.reference_ts)
    runs = [
        compare_on_recent_window(
            interactions,
            catalog,
            candidate=trained.model,
            active=active,
            active_until=until,
            config=fast_config(),
            max_shoppers=50,
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert runs[0].shoppers == 50
    assert (trained.model.strategy, trained.model.reference_ts, active.reference_ts) == before
