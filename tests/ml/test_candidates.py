"""Candidate generators on tiny hand-checkable inputs."""

from __future__ import annotations

import numpy as np
import pytest

from ml.candidates.buy_again import buy_again_scores, item_intervals
from ml.candidates.cooccurrence import cooccurrence_matrix, session_ids
from ml.candidates.popularity import TimeBins, popularity_scores, trending_scores
from ml.data import DAY, EventWeights, IdIndex, Interactions, build_user_item_table
from ml.sparse_utils import csr_gather, dedup_rows, topk_rows

T0 = 1_700_000_000


def test_sessions_split_on_gaps_over_30_minutes_and_on_shopper_change():
    users = np.array([0, 0, 0, 1, 0])
    ts = np.array([0, 60, 60 + 1801, 70, 60 + 1801 + 1800])
    basket, order = session_ids(users, ts)

    by_event = np.empty(len(users), dtype=np.int64)
    by_event[order] = basket
    assert by_event[0] == by_event[1]  # 60 s apart
    assert by_event[2] != by_event[1]  # 1801 s gap
    assert by_event[4] == by_event[2]  # exactly 1800 s is the same session
    assert by_event[3] not in (by_event[0], by_event[2])  # another shopper


def test_cooccurrence_counts_jaccard_and_lift():
    # Baskets: {0,1}, {0,1,2}, {0,2}, {1}; N = 4, n0 = 3, n1 = 3, n2 = 2.
    basket = np.array([0, 0, 1, 1, 1, 2, 2, 3])
    items = np.array([0, 1, 0, 1, 2, 0, 2, 1])
    counts = cooccurrence_matrix(basket, items, 3, measure="count", min_support=1).toarray()
    jac = cooccurrence_matrix(basket, items, 3, measure="jaccard", min_support=1).toarray()
    lift = cooccurrence_matrix(basket, items, 3, measure="lift", min_support=1).toarray()

    assert counts.tolist() == [[0, 2, 2], [2, 0, 1], [2, 1, 0]]
    assert jac[0, 1] == pytest.approx(2 / (3 + 3 - 2))
    assert jac[1, 2] == pytest.approx(1 / (3 + 2 - 1))
    assert lift[0, 2] == pytest.approx(2 * 4 / (3 * 2))
    assert lift[1, 2] == pytest.approx(1 * 4 / (3 * 2))


def test_cooccurrence_min_support_and_duplicates_in_a_basket():
    basket = np.array([0, 0, 0, 1, 1])
    items = np.array([0, 0, 1, 0, 2])  # item 0 twice in basket 0 counts once
    counts = cooccurrence_matrix(basket, items, 3, measure="count", min_support=2).toarray()
    assert counts.sum() == 0
    counts = cooccurrence_matrix(basket, items, 3, measure="count", min_support=1).toarray()
    assert counts.tolist() == [[0, 1, 1], [1, 0, 0], [1, 0, 0]]


def test_popularity_counts_distinct_shoppers_before_events():
    items = np.array([0, 0, 0, 1, 1, 2])
    users = np.array([5, 5, 5, 6, 7, 8])
    pop = popularity_scores(items, users, 4)

    assert np.argsort(-pop, kind="stable").tolist() == [1, 0, 2, 3]
    assert pop[3] == 0.0


def test_trending_prefers_recent_events():
    items = np.array([0, 0, 1])
    ts = np.array([T0, T0, T0 + 30 * DAY])
    score = trending_scores(items, ts, np.ones(3), 2, reference_ts=T0 + 30 * DAY, half_life_days=7)
    assert score[1] == pytest.approx(1.0)
    assert score[0] == pytest.approx(2 * 0.5 ** (30 / 7))
    assert score[1] > score[0]


def test_time_bins_window_share():
    items = np.array([0, 0, 1, 1, 1])
    ts = np.array([T0, T0 + DAY, T0 + 10 * DAY, T0 + 10 * DAY, T0 + 11 * DAY])
    bins = TimeBins.build(items, ts, 2)

    # Window of 3 days ending on day 11: only item 1's three events.
    share = bins.window_share(np.array([0, 1]), np.array([T0 + 11 * DAY]), 3)
    assert share.tolist() == [0.0, 1.0]
    share = bins.window_share(np.array([0, 1]), np.array([T0 + DAY]), 3)
    assert share.tolist() == [1.0, 0.0]


def _table(rows: list[tuple[str, str, str, int]]):
    inter = Interactions.from_rows((u, i, t, None, ts) for u, i, t, ts in rows)
    users = IdIndex(np.array(sorted({r[0] for r in rows})))
    items = IdIndex(np.array(sorted({r[1] for r in rows})))
    table = build_user_item_table(
        inter,
        users,
        items,
        EventWeights(),
        reference_ts=max(r[3] for r in rows),
        half_life_days=None,
        repeat_event="purchase",
    )
    return table, users, items


def test_buy_again_orders_by_frequency_then_due_ness():
    d = DAY
    rows = [
        # milk: bought 4 times every 7 days, last 7 days ago -> due now
        *[("u", "milk", "purchase", T0 + k * 7 * d) for k in range(4)],
        # bread: bought 4 times every 7 days, last 1 day ago -> not due
        *[("u", "bread", "purchase", T0 + 6 * d + k * 7 * d) for k in range(4)],
        # tv: viewed only -> no buy-again score
        ("u", "tv", "view", T0 + 27 * d),
        # jam: bought once
        ("u", "jam", "purchase", T0 + 20 * d),
    ]
    table, _, items = _table(rows)
    iv = item_intervals(table, len(items))
    score = buy_again_scores(table, iv, T0 + 28 * d)
    by_item = {items.ids[c]: s for c, s in zip(table.indices, score, strict=True)}

    assert iv.tolist()[items.get("milk")] == pytest.approx(7.0)
    assert by_item["tv"] == 0.0
    assert by_item["milk"] > by_item["bread"] > by_item["jam"] > 0


def test_repeat_occasions_count_distinct_seconds():
    rows = [("u", "a", "purchase", T0), ("u", "a", "purchase", T0), ("u", "a", "purchase", T0 + 9)]
    table, _, _ = _table(rows)
    assert table.data["repeat_count"].tolist() == [2.0]
    assert table.data["count"].tolist() == [3.0]


def test_sparse_helpers():
    import scipy.sparse as sp

    m = sp.csr_matrix(np.array([[0, 2, 0], [3, 0, 4]], dtype=float))
    got = csr_gather(
        m.indptr, m.indices, m.data, 3, np.array([0, 1, 1, -1]), np.array([1, 2, 1, 0])
    )
    assert got.tolist() == [2.0, 4.0, 0.0, 0.0]

    assert dedup_rows(np.array([[3, 1, 3, -1, 1]])).tolist() == [[3, 1, -1, -1, -1]]

    idx, sc = topk_rows(np.array([[0.1, 0.5, -np.inf, 0.5]]), 3)
    assert idx.tolist() == [[1, 3, 0]]
    assert sc.tolist() == [[0.5, 0.5, 0.1]]


def test_als_fit_holds_blas_to_one_thread_whatever_the_environment():
    import warnings

    import implicit.utils
    import scipy.sparse as sp
    import threadpoolctl

    from ml.candidates.als import AlsParams, fit_als

    # Given BLAS at two threads (numpy imported before ml could set OPENBLAS_NUM_THREADS)
    matrix = sp.random(60, 40, density=0.2, format="csr", dtype=np.float32, random_state=0)
    implicit.utils._checked_blas_config = False  # implicit checks once per process
    with threadpoolctl.threadpool_limits(2, "blas"), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        # When ALS is fitted, then implicit finds one BLAS thread (it would warn otherwise)
        user_f, item_f = fit_als(matrix, AlsParams(factors=4, iterations=2))
        # and the caller's setting is restored afterwards
        blas = [a for a in threadpoolctl.threadpool_info() if a["user_api"] == "blas"]
        assert {a["num_threads"] for a in blas} == {2}
    assert user_f.shape == (60, 4)
    assert item_f.shape == (40, 4)
