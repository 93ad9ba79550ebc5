"""Known answers for the re-ranker's features on a store small enough to work out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.candidates.als import AlsParams
from ml.data import DAY, Catalog, Interactions
from ml.model import FEATURE_NAMES, FitOptions, candidate_features, fit_model


@pytest.fixture(scope="module")
def tiny_model():
    # u0 bought A twice (days 0 and 10) and viewed B (day 12); u1 bought A (day 5) and C (day
    # 20, the newest event, so "now" is day 20); u2 viewed B (day 1). D has no events.
    interactions = Interactions.from_rows(
        [
            ("u0", "A", "purchase", None, 0 * DAY),
            ("u0", "A", "purchase", None, 10 * DAY),
            ("u0", "B", "view", None, 12 * DAY),
            ("u1", "A", "purchase", None, 5 * DAY),
            ("u1", "C", "purchase", None, 20 * DAY),
            ("u2", "B", "view", None, 1 * DAY),
        ]
    )
    catalog = Catalog(
        item_ids=np.array(["A", "B", "C", "D"]),
        categories=[["x"], ["y"], ["x"], ["y"]],
        prices=np.array([10.0, 20.0, 40.0, 5.0]),
    )
    # ALS only has to exist (the features gather its factors); its values are not checked here.
    options = FitOptions(als=AlsParams(factors=2, iterations=1))
    return fit_model(interactions, catalog, options)


def _features_of(model, user: str, items: list[str]) -> dict[str, list[float]]:
    u = np.array([model.user_index.get(user)])
    cands = np.array([[model.item_index.get(i) for i in items]])
    rank = np.full(cands.shape, 31)
    x = candidate_features(model, u, cands, rank)
    return {name: x[:, j].tolist() for j, name in enumerate(FEATURE_NAMES)}


def test_shopper_item_and_catalog_features_match_hand_computed_values(tiny_model):
    f = _features_of(tiny_model, "u0", ["A", "D"])

    assert f["ui_count"] == [2.0, 0.0]
    assert f["is_seen"] == [1.0, 0.0]
    assert f["ui_days_since_last"][0] == pytest.approx(10.0)
    assert math.isnan(f["ui_days_since_last"][1])
    # A was touched by two shoppers, D by none.
    assert f["pop_log"] == pytest.approx([math.log1p(2), 0.0])
    # A's first event was on day 0; D has none and no creation date, so it is as old as "now".
    assert f["item_age_days"] == pytest.approx([20.0, 0.0])
    # Shopper: 3 events over days 0..12 on 2 items, idle since day 12.
    assert f["user_events_log"] == pytest.approx([math.log1p(3)] * 2)
    assert f["user_items_log"] == pytest.approx([math.log1p(2)] * 2)
    assert f["user_span_days"] == pytest.approx([12.0] * 2)
    assert f["user_idle_days"] == pytest.approx([8.0] * 2)
    # The shopper's median price is 15 (A at 10, B at 20).
    assert f["price_ratio_log"] == pytest.approx([math.log(10 / 15), math.log(5 / 15)])


def test_category_features_compare_the_shopper_with_the_store(tiny_model):
    f = _features_of(tiny_model, "u0", ["C", "D"])

    # Half of u0's items are in "x" and half in "y"; store-wide, 3 of 5 shopper-item pairs are
    # in "x" and 2 in "y".
    assert f["cat_share"] == pytest.approx([0.5, 0.5])
    assert f["cat_lift"] == pytest.approx([0.5 / 0.6, 0.5 / 0.4])


def test_padding_slots_are_all_missing(tiny_model):
    u = np.array([tiny_model.user_index.get("u1")])
    x = candidate_features(tiny_model, u, np.array([[-1]]), np.array([[31]]))

    assert np.isnan(x).all()
