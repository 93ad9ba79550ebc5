"""What is measured is what is served: training features and lists at a shopper's prediction
time come out of the serving path unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ml.data import DAY, Interactions
from ml.datasets.synthetic import grocery_store
from ml.evaluation import first_event_times, per_user_last_order_split
from ml.model import FEATURE_NAMES, candidate_features
from ml.model.state import live_state, live_table, stored_state
from ml.pipeline import orders_known, train
from ml.ranker import training_frame

from .conftest import fast_config


@pytest.fixture(scope="module")
def grocery():
    return grocery_store(n_users=150, n_items=600, n_categories=12, seed=11)


@pytest.fixture(scope="module")
def model(grocery):
    interactions, catalog = grocery
    result = train(interactions, catalog, fast_config())
    assert result.model.strategy == "als+rerank"
    return result.model


def _serving_features(model, u: int, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates and features the fresh serving path computes for shopper row ``u`` asked
    at time ``t`` with nothing new since training."""
    empty = np.zeros(0)
    table = live_table(model, u, empty.astype(np.int64), empty, empty, empty.astype(bool))
    state = live_state(model, table, model.arrays["user_factors"][u], t)
    cands, rank = model.candidates(state, exclude_seen=False)
    return cands, rank, candidate_features(model, state, cands, rank)


@pytest.mark.parametrize("days_later", [0.0, 2.5, 17.0])
def test_features_at_time_t_are_identical_through_training_and_serving(model, days_later):
    rows = np.arange(0, model.n_users, 7)
    t = model.reference_ts + days_later * DAY
    as_of = np.full(len(rows), t)
    # Training path: the ranker's frame is built from the stored state as of each prediction.
    state = stored_state(model, rows, as_of)
    cands, rank = model.candidates(state, exclude_seen=False)
    trained_x = candidate_features(model, state, cands, rank).reshape(len(rows), cands.shape[1], -1)

    for j, u in enumerate(rows.tolist()):
        live_cands, live_rank, live_x = _serving_features(model, u, t)

        np.testing.assert_array_equal(live_cands[0], cands[j])
        np.testing.assert_array_equal(live_rank[0], rank[j])
        np.testing.assert_array_equal(live_x.reshape(cands.shape[1], -1), trained_x[j])


def test_lists_asked_at_time_t_are_identical_through_batch_and_fresh_serving(model):
    users = model.user_index.ids[:25].tolist()
    rows = model.user_index.lookup(users)
    t = model.reference_ts + 9 * DAY

    batch, _ = model.recommend_indices(rows, 10, exclude_seen=False, as_of=np.full(len(rows), t))

    for user, expected in zip(users, batch.tolist(), strict=True):
        fresh = model.recommend_fresh(user, [], k=10, exclude_seen=False, now=t)
        assert [model.item_index.get(i) for i in fresh.item_ids] == expected


def test_features_depend_on_the_prediction_time(model):
    # A shopper asked a month later is further from their last order: the recency features
    # move, so evaluating "as of the data set's end" would not measure what is served.
    rows = np.arange(10)
    now = stored_state(model, rows)
    later = stored_state(model, rows, model.reference_ts + 30 * DAY)

    assert later.ref.tolist() == [model.reference_ts + 30 * DAY] * 10
    cells = later.table.data
    assert (cells["buy_again"] != now.table.data["buy_again"]).any()
    assert np.array_equal(cells["count"], now.table.data["count"])


def test_training_frame_is_computed_as_of_each_shoppers_prediction_time(model):
    # Given each shopper's next purchase ten days after the model's reference time
    rows = np.arange(40)
    truth_cols = model.table.indices[model.table.indptr[rows]]  # one seen item each
    truth = sp.csr_matrix(
        (np.ones(len(rows)), (np.arange(len(rows)), truth_cols)), shape=(len(rows), model.n_items)
    )
    when = np.full(len(rows), model.reference_ts + 10 * DAY)

    # When the ranker's frame is built as of then, and as of the reference time
    later, _, groups = training_frame(model, rows, truth, exclude_seen=False, as_of=when)
    now, _, _ = training_frame(model, rows, truth, exclude_seen=False)

    # Then every shopper is ten days idler in it
    idle = FEATURE_NAMES.index("user_idle_days")
    assert len(groups) >= 30
    shifted = np.unique(np.round(later[:, idle] - 10.0, 3))
    assert np.isin(shifted, np.unique(np.round(now[:, idle], 3))).all()
    assert later[:, idle].min() >= 10.0


def test_grocery_orders_are_split_at_each_shoppers_last_order(grocery):
    interactions, _ = grocery
    train_part, test_part = per_user_last_order_split(interactions)

    assert orders_known(interactions)
    assert len(train_part) + len(test_part) == len(interactions)
    users = sorted(set(test_part.user_ids.tolist()))
    # Every shopper has at least four orders, so every one predicts their last.
    assert len(users) == len(set(interactions.user_ids.tolist()))
    for user in users[:20]:
        mine = test_part.subset(test_part.user_ids == user)
        assert len(set(mine.order_ids.tolist())) == 1
        earlier = train_part.subset(train_part.user_ids == user)
        assert earlier.timestamps.max() < mine.timestamps.min()
    starts = first_event_times(test_part, np.array(users[:3]))
    for user, start in zip(users[:3], starts.tolist(), strict=True):
        assert start == test_part.timestamps[test_part.user_ids == user].min()


def test_last_order_split_keeps_shoppers_with_one_order_in_train():
    events = Interactions.from_rows(
        [
            ("a", "x", "purchase", None, 0, "o1"),
            ("a", "y", "purchase", None, 10 * DAY, "o2"),
            ("a", "z", "view", None, 10 * DAY + 60),
            ("b", "x", "purchase", None, 0, "o3"),
            ("c", "x", "view", None, 0),
        ]
    )

    train_part, test_part = per_user_last_order_split(events)

    assert list(zip(test_part.user_ids, test_part.item_ids, strict=True)) == [
        ("a", "y"),
        ("a", "z"),
    ]
    assert sorted(train_part.user_ids.tolist()) == ["a", "b", "c"]
    assert not orders_known(events.subset(np.array([2, 4])))


def test_category_shares_are_each_shoppers_share_of_item_category_pairs(model):
    rows = np.array([3, 0, 3, 41, model.n_users - 1])  # any order, repeats allowed
    state = stored_state(model, rows)
    n_cats = len(model._category_names)
    expected = np.zeros((len(rows), n_cats))
    for j, u in enumerate(rows.tolist()):
        items = model.table.indices[model.table.indptr[u] : model.table.indptr[u + 1]]
        for cat in model._item_cats[items].ravel().tolist():
            if cat >= 0:
                expected[j, cat] += 1.0
    expected /= np.maximum(expected.sum(axis=1, keepdims=True), 1.0)

    shares = state.user_cat
    assert shares.has_sorted_indices
    assert shares.nnz == np.count_nonzero(expected)
    np.testing.assert_allclose(shares.toarray(), expected, rtol=1e-12)
