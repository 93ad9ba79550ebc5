"""Metrics on hand-computed rankings and the per-user time split boundaries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.data import Interactions
from ml.evaluation import evaluate_lists, per_user_time_split

T0 = 1_700_000_000


def test_metrics_of_a_known_ranking():
    # Relevant {a, c, x}; top-3 list [a, b, c]: hits at ranks 1 and 3.
    m = evaluate_lists([["a", "b", "c"]], [{"a", "c", "x"}], k=3, n_catalog_items=10)

    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["precision@3"] == pytest.approx(2 / 3)
    assert m["recall@3"] == pytest.approx(2 / 3)
    assert m["ndcg@3"] == pytest.approx(dcg / idcg)
    assert m["map@3"] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert m["coverage"] == pytest.approx(3 / 10)
    assert m["users"] == 1


def test_metrics_average_over_users_and_skip_users_without_truth():
    m = evaluate_lists(
        [["a", "b"], ["c", "d"], ["e", "f"]], [{"b"}, {"z"}, set()], k=2, n_catalog_items=6
    )

    assert m["users"] == 2
    assert m["precision@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["recall@2"] == pytest.approx((1 + 0) / 2)
    assert m["ndcg@2"] == pytest.approx((1 / math.log2(3)) / 2)
    assert m["map@2"] == pytest.approx((1 / 2) / 2)
    assert m["coverage"] == pytest.approx(4 / 6)  # the skipped user's list is not counted


def test_short_lists_keep_k_in_precision_and_duplicates_count_once():
    m = evaluate_lists([["a", "a"]], [{"a", "b"}], k=4, n_catalog_items=4)

    assert m["precision@4"] == pytest.approx(1 / 4)
    assert m["recall@4"] == pytest.approx(1 / 2)
    assert m["ndcg@4"] == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_perfect_ranking_scores_one():
    m = evaluate_lists([["a", "b", "c"]], [{"a", "b"}], k=3, n_catalog_items=3)

    assert m["ndcg@3"] == pytest.approx(1.0)
    assert m["map@3"] == pytest.approx(1.0)
    assert m["recall@3"] == pytest.approx(1.0)


def _events(user: str, n: int) -> list[tuple[str, str, str, None, int]]:
    return [(user, f"{user}-i{j}", "view", None, T0 + j) for j in range(n)]


def test_time_split_takes_each_users_latest_fifth():
    rows = _events("u10", 10) + _events("u5", 5) + _events("u4", 4) + _events("u7", 7)
    rng = np.random.default_rng(0)
    shuffled = [rows[j] for j in rng.permutation(len(rows))]
    train, test = per_user_time_split(
        Interactions.from_rows(shuffled), test_fraction=0.2, min_interactions=5
    )

    held = sorted(test.item_ids.tolist())
    # 10 -> 2, 5 -> 1, 7 -> round(1.4) = 1, 4 events -> below the minimum: train only.
    assert held == ["u10-i8", "u10-i9", "u5-i4", "u7-i6"]
    assert len(train) == len(rows) - 4
    assert not set(train.item_ids.tolist()) & set(held)


def test_time_split_ties_keep_input_order():
    rows = [("u", f"i{j}", "view", None, T0) for j in range(5)]
    _, test = per_user_time_split(Interactions.from_rows(rows), min_interactions=5)

    assert test.item_ids.tolist() == ["i4"]
