"""Baskets: order ids on purchases drive bought-together and the re-ranker's basket features."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.candidates.als import AlsParams
from ml.data import DAY, Interactions
from ml.model import FEATURE_NAMES, FitOptions, candidate_features, fit_model
from ml.model.state import live_state, live_table, stored_state

ORDER_FEATURES = ("ord_share_last5", "ord_since_last", "ord_reorder_rate")

# u0: o1 (day 0) {A, B}, o2 (day 7) {A, C}, o3 (day 14) {A}, o4 (day 21) {B, C}.
# u1: purchases without order ids. u2: E in six orders p1..p6, F only in p1.
U0 = [
    ("u0", "A", "purchase", None, 0 * DAY, "o1"),
    ("u0", "B", "purchase", None, 0 * DAY + 60, "o1"),
    ("u0", "A", "purchase", None, 7 * DAY, "o2"),
    ("u0", "C", "purchase", None, 7 * DAY, "o2"),
    ("u0", "A", "purchase", None, 14 * DAY, "o3"),
]
U0_LAST = [
    ("u0", "B", "purchase", None, 21 * DAY, "o4"),
    ("u0", "C", "purchase", None, 21 * DAY, "o4"),
]
U1 = [("u1", "D", "purchase", None, 2 * DAY), ("u1", "A", "purchase", None, 3 * DAY, None)]
U2 = [("u2", "F", "purchase", None, 0, "p1")] + [
    ("u2", "E", "purchase", None, d * DAY, f"p{j}")
    for j, d in enumerate((0, 3, 6, 9, 12, 21), start=1)
]
OPTIONS = FitOptions(als=AlsParams(factors=2, iterations=1))


@pytest.fixture(scope="module")
def full_model():
    rows = U0 + U0_LAST + U1 + U2
    return fit_model(Interactions.from_rows(rows), None, OPTIONS)


def _order_features(model, state, items):
    cands = np.array([[model.item_index.get(i) for i in items]])
    x = candidate_features(model, state, cands, np.full(cands.shape, 31))
    col = {n: j for j, n in enumerate(FEATURE_NAMES)}
    return {name: x[:, col[name]].tolist() for name in ORDER_FEATURES}


def _stored(model, user, items):
    return _order_features(
        model, stored_state(model, np.array([model.user_index.get(user)])), items
    )


def test_basket_features_match_hand_computed_values(full_model):
    f = _stored(full_model, "u0", ["A", "B", "C", "D"])

    # Four orders: A in three of them, B and C in two, D (bought by u1 only) in none.
    assert f["ord_share_last5"] == pytest.approx([0.75, 0.5, 0.5, 0.0])
    assert f["ord_since_last"][:3] == [1.0, 0.0, 0.0]
    assert math.isnan(f["ord_since_last"][3])
    # 7 order lines (2 + 2 + 1 + 2); reorders: A twice, B once, C once.
    assert f["ord_reorder_rate"] == pytest.approx([4 / 7] * 4)


def test_only_the_last_five_orders_count_for_the_share(full_model):
    f = _stored(full_model, "u2", ["E", "F"])

    assert f["ord_share_last5"] == pytest.approx([1.0, 0.0])
    assert f["ord_since_last"] == [0.0, 5.0]
    assert f["ord_reorder_rate"] == pytest.approx([5 / 7] * 2)


def test_shoppers_without_order_ids_get_missing_basket_features(full_model):
    f = _stored(full_model, "u1", ["A", "D"])

    assert all(math.isnan(v) for name in ORDER_FEATURES for v in f[name])


@pytest.mark.parametrize(
    ("user", "new_events", "items"),
    [
        (
            "u0",
            [("B", "purchase", 21 * DAY, None, "o4"), ("C", "purchase", 21 * DAY, None, "o4")],
            ["A", "B", "C", "D"],
        ),
        ("u2", [("E", "purchase", 21 * DAY, None, "p6")], ["E", "F"]),
    ],
)
def test_live_orders_give_the_features_training_on_them_gives(full_model, user, new_events, items):
    # Given a model trained before the shopper's last order, and that order sent live
    rows = U0 + U0_LAST + U1 + U2
    cut = fit_model(
        Interactions.from_rows([r for r in rows if r[4] < 21 * DAY]),
        None,
        OPTIONS,
        reference_ts=21 * DAY,
    )
    u = cut.user_index.get(user)
    items_idx = np.array([cut.item_index.get(e[0]) for e in new_events], dtype=np.int64)
    stamps = np.array([e[2] for e in new_events], dtype=np.float64)
    orders = np.array([e[4] for e in new_events], dtype=object)
    ones = np.ones(len(new_events))
    table = live_table(cut, u, items_idx, ones, stamps, ones.astype(bool), orders)

    # When the features are computed from the live state
    live = _order_features(
        cut, live_state(cut, table, cut.arrays["user_factors"][u], 21 * DAY), items
    )

    # Then they equal those of a model trained on every order (NaN where it has NaN)
    np.testing.assert_equal(live, _stored(full_model, user, items))


def test_recommend_fresh_takes_an_optional_order_id(full_model):
    ts = 22 * DAY
    three = full_model.recommend_fresh("u1", [("A", "purchase", ts)], k=3, exclude_seen=False)
    four = full_model.recommend_fresh("u1", [("A", "purchase", ts, None)], k=3, exclude_seen=False)
    unknown = full_model.recommend_fresh(
        "u1", [("A", "purchase", ts, None, None)], k=3, exclude_seen=False
    )
    ordered = full_model.recommend_fresh(
        "u1", [("A", "purchase", ts, None, "x1")], k=3, exclude_seen=False
    )

    assert three.items == four.items == unknown.items
    assert len(ordered.items) == 3


def test_items_of_one_order_go_together_and_separate_orders_do_not():
    # Given: s0's orders o1 {A, B} and, five minutes later, o2 {C}; s1's order o3 holds A and,
    # five hours later, D; s2 bought A then E a minute apart without order ids (a session).
    rows = [
        ("s0", "A", "purchase", None, 0, "o1"),
        ("s0", "B", "purchase", None, 10, "o1"),
        ("s0", "C", "purchase", None, 300, "o2"),
        ("s1", "A", "purchase", None, 0, "o3"),
        ("s1", "D", "purchase", None, 5 * 3600, "o3"),
        ("s2", "A", "purchase", None, 0),
        ("s2", "E", "purchase", None, 60),
    ]
    options = FitOptions(als=None, cooccurrence_measure="count", cooccurrence_min_support=1)

    # When the model is fitted
    model = fit_model(Interactions.from_rows(rows), None, options)

    # Then A goes with B, D and E only
    a = model.item_index.get("A")
    cooc = model.cooc.toarray()
    together = {str(model.item_index.ids[j]) for j in np.flatnonzero(cooc[a])}
    assert together == {"B", "D", "E"}


def test_order_ids_are_optional_and_kept_by_subsets():
    events = Interactions.from_rows(
        [("u", "A", "purchase", None, 0, "o1"), ("u", "B", "view", None, 1)]
    )

    assert events.order_ids.tolist() == ["o1", ""]
    assert events.subset(np.array([1, 0])).order_ids.tolist() == ["", "o1"]
    assert events.order_mask().tolist() == [True, False]
    assert Interactions.from_rows([("u", "A", "view", None, 0)]).order_ids.tolist() == [""]
