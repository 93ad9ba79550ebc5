"""Interactions/Catalog construction and the weighted shopper x item matrix."""

from __future__ import annotations

import numpy as np
import pytest

from ml.data import (
    DAY,
    Catalog,
    EventWeights,
    IdIndex,
    Interactions,
    build_index,
    build_interaction_matrix,
    build_user_item_table,
)

T0 = 1_700_000_000


def test_from_rows_converts_ids_and_missing_values():
    inter = Interactions.from_rows([(1, 10, "view", None, T0), ("u2", "i3", "rating", 4, T0 + 5)])

    assert inter.user_ids.tolist() == ["1", "u2"]
    assert inter.item_ids.tolist() == ["10", "i3"]
    assert np.isnan(inter.values[0])
    assert inter.values[1] == 4.0
    assert inter.timestamps.dtype == np.int64


def test_unknown_event_type_is_rejected_by_name():
    with pytest.raises(ValueError, match="unknown event types: \\['like'\\]"):
        Interactions.from_rows([("u", "i", "like", None, T0)])


def test_catalog_defaults_unknown_fields():
    cat = Catalog.from_rows([("a", "Tea", None, ["Drinks"], None, None)])

    assert cat.descriptions == [""]
    assert np.isnan(cat.prices[0])
    assert cat.created_at.tolist() == [0]
    assert cat.in_stock.tolist() == [True]


def test_matrix_sums_event_weights_per_cell():
    inter = Interactions.from_rows(
        [
            ("u1", "a", "view", None, T0),
            ("u1", "a", "add_to_cart", None, T0),
            ("u1", "a", "purchase", None, T0),
            ("u1", "b", "click", None, T0),
            ("u2", "b", "view", None, T0),
        ]
    )
    m, users, items = build_interaction_matrix(inter, EventWeights())

    assert users.ids.tolist() == ["u1", "u2"]
    assert items.ids.tolist() == ["a", "b"]
    assert m.toarray().tolist() == [[9.0, 0.5], [0.0, 1.0]]


def test_rating_weight_grows_with_rating_and_low_ratings_count_little():
    inter = Interactions.from_rows(
        [
            ("u", "low", "rating", 1, T0),
            ("u", "mid", "rating", 3, T0),
            ("u", "top", "rating", 5, T0),
        ]
    )
    m, _, items = build_interaction_matrix(inter, EventWeights(rating=4.0, rating_floor=0.1))
    row = dict(zip(items.ids.tolist(), m.toarray()[0].tolist(), strict=True))

    assert row["low"] == pytest.approx(0.4)  # 4 * 0.1
    assert row["mid"] == pytest.approx(4.0 * (0.1 + 0.9 * 0.5))
    assert row["top"] == pytest.approx(4.0)


def test_time_decay_halves_weight_per_half_life():
    inter = Interactions.from_rows(
        [("u", "old", "view", None, T0), ("u", "new", "view", None, T0 + 14 * DAY)]
    )
    m, _, items = build_interaction_matrix(inter, EventWeights(), half_life_days=7)
    row = dict(zip(items.ids.tolist(), m.toarray()[0].tolist(), strict=True))

    assert row["new"] == pytest.approx(1.0)
    assert row["old"] == pytest.approx(0.25)


def test_catalog_items_without_events_get_empty_columns():
    inter = Interactions.from_rows([("u", "a", "view", None, T0)])
    cat = Catalog.from_rows(
        [("z", "Z", None, None, None, None), ("a", "A", None, None, None, None)]
    )
    m, _, items = build_interaction_matrix(inter, catalog=cat)

    assert items.ids.tolist() == ["z", "a"]
    assert m.toarray().tolist() == [[0.0, 1.0]]


def test_codes_are_shared_by_subsets_and_lookups_match_per_event_lookup():
    inter = Interactions.from_rows(
        [
            ("u1", "a", "view", None, T0),
            ("u2", "b", "purchase", None, T0),
            ("u1", "b", "view", None, T0),
        ]
    )
    codes, vocab = inter.codes("user_ids")
    sub = inter.subset(np.array([False, True, True]))
    sub_codes, sub_vocab = sub.codes("user_ids")

    assert codes.tolist() == [0, 1, 0]
    assert vocab.tolist() == ["u1", "u2"]
    assert sub_vocab is vocab
    assert sub_codes.tolist() == [1, 0]
    users = IdIndex(np.array(["u2", "u9"]))
    assert users.lookup_column(sub, "user_ids").tolist() == [0, -1]
    assert users.lookup_column(sub, "user_ids").tolist() == users.lookup(sub.user_ids).tolist()
    assert sub.type_mask("purchase").tolist() == [True, False]
    assert Interactions.empty().type_mask("purchase").tolist() == []


def test_repeat_occasions_are_distinct_seconds_with_first_and_last():
    inter = Interactions.from_rows(
        [
            ("u", "a", "purchase", None, T0 + 50),
            ("u", "a", "purchase", None, T0),
            ("u", "a", "purchase", None, T0 + 50),  # same order, second unit
            ("u", "a", "view", None, T0 + 90),
            ("u", "b", "view", None, T0 + 10),
        ]
    )
    users, items = build_index(inter)
    table = build_user_item_table(
        inter,
        users,
        items,
        EventWeights(),
        reference_ts=T0 + 90,
        half_life_days=None,
        repeat_event="purchase",
    )

    assert table.indices.tolist() == [0, 1]  # a, b
    assert table.data["count"].tolist() == [4.0, 1.0]
    assert table.data["repeat_count"].tolist() == [2.0, 0.0]
    assert table.data["first_repeat_ts"].tolist() == [float(T0), 0.0]
    assert table.data["last_repeat_ts"].tolist() == [float(T0 + 50), 0.0]
    assert table.data["last_ts"].tolist() == [float(T0 + 90), float(T0 + 10)]
