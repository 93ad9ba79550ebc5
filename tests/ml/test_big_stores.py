"""Big stores: coded events, index splits, the export, the sampled search, mapped artifacts."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from ml.candidates.als import AlsParams
from ml.data import (
    EVENT_TYPES,
    EventWeights,
    Interactions,
    build_index,
    build_seen_cells,
    build_user_item_table,
    interactions_export,
    interactions_import,
)
from ml.evaluation import relevance_matrix
from ml.model import RecommenderModel
from ml.model.arrays_io import is_mapped, load_arrays, save_arrays
from ml.search import _sample_rows, search_als

T0 = 1_700_000_000


def _events() -> Interactions:
    return Interactions.from_rows(
        [
            ("u1", "a", "view", None, T0),
            ("u2", "b", "purchase", None, T0 + 1, "o-7"),
            ("u1", "b", "rating", 4.5, T0 + 2),
            ("u3", "a", "purchase", None, T0 + 3, "o-8"),
            ("u2", "c", "purchase", None, T0 + 4, "o-7"),
        ]
    )


def test_events_are_held_as_small_codes_with_each_id_once():
    inter = _events()

    codes, vocab = inter.codes("user_ids")
    assert codes.dtype == np.int32
    assert codes.tolist() == [0, 1, 0, 2, 1]
    assert vocab.tolist() == ["u1", "u2", "u3"]
    kinds, kind_vocab = inter.codes("event_types")
    assert kinds.dtype == np.int8
    assert kind_vocab.tolist() == list(EVENT_TYPES)
    orders, order_vocab = inter.codes("order_ids")
    assert order_vocab.tolist() == ["", "o-7", "o-8"]
    assert orders.tolist() == [0, 1, 0, 2, 1]
    assert inter.order_ids.tolist() == ["", "o-7", "", "o-8", "o-7"]
    assert inter.order_mask().tolist() == [False, True, False, True, True]
    assert inter.values.dtype == np.float64
    assert inter.values[2] == 4.5
    # int32 user + int32 item + int8 type + float32 value + int64 time + int32 order
    assert inter.nbytes() == 5 * 25


def test_a_subset_is_an_index_into_its_parent_not_a_copy():
    inter = _events()
    sub = inter.subset(np.array([False, True, False, True, True]))
    subsub = sub.subset(np.array([2, 0]))

    assert sub.nbytes() == 3 * 4  # an int32 row index
    assert sub.codes("user_ids")[1] is inter.codes("user_ids")[1]
    assert subsub.user_ids.tolist() == ["u2", "u2"]
    assert subsub.item_ids.tolist() == ["c", "b"]
    assert subsub.timestamps.tolist() == [T0 + 4, T0 + 1]
    users, items = build_index(subsub)
    assert users.ids.tolist() == ["u2"]
    assert items.ids.tolist() == ["c", "b"]


def test_string_order_ids_with_blank_anywhere_code_blank_as_zero():
    inter = Interactions(
        user_ids=["u", "u", "v"],
        item_ids=["a", "b", "a"],
        event_types=["purchase", "purchase", "view"],
        values=[np.nan] * 3,
        timestamps=[T0, T0, T0],
        order_ids=["o1", None, ""],
    )

    codes, vocab = inter.codes("order_ids")
    assert vocab.tolist() == ["", "o1"]
    assert codes.tolist() == [1, 0, 0]


def test_from_codes_rejects_what_would_decode_wrong():
    good = dict(
        user_codes=np.array([0]),
        user_vocab=np.array(["u"], dtype=object),
        item_codes=np.array([0]),
        item_vocab=np.array(["a"], dtype=object),
        type_codes=np.array([0]),
        values=np.array([np.nan]),
        timestamps=np.array([T0]),
    )
    assert Interactions.from_codes(**good).event_types.tolist() == ["view"]
    with pytest.raises(ValueError, match="type codes must index EVENT_TYPES"):
        Interactions.from_codes(**{**good, "type_codes": np.array([len(EVENT_TYPES)])})
    with pytest.raises(ValueError, match="different length"):
        Interactions.from_codes(**{**good, "timestamps": np.array([T0, T0])})
    with pytest.raises(ValueError, match='must start with ""'):
        Interactions.from_codes(
            **good, order_codes=np.array([0]), order_vocab=np.array(["o"], dtype=object)
        )


def test_export_roundtrip_gives_the_same_events(tmp_path):
    inter = _events()

    manifest = interactions_export(inter, tmp_path / "export", meta={"store": "s"})
    back = interactions_import(tmp_path / "export")

    assert manifest["events"] == 5
    assert manifest["shoppers"] == 3
    assert manifest["meta"] == {"store": "s"}
    for column in ("user_ids", "item_ids", "event_types", "order_ids", "timestamps"):
        assert getattr(back, column).tolist() == getattr(inter, column).tolist()
    np.testing.assert_array_equal(back.values, inter.values)
    assert is_mapped(back.codes("user_ids")[0])


def test_search_samples_whole_shoppers_within_the_event_budget_keeping_validation_rows():
    per_row = np.array([5, 1, 7, 2, 9, 3, 4, 8, 6, 2])
    keep = np.array([2, 7])

    rows = _sample_rows(per_row, keep, budget=30, random_state=1)

    assert set(keep.tolist()) <= set(rows.tolist())
    assert np.all(np.diff(rows) > 0)
    # whole shoppers until the next one would pass the budget
    assert 30 - per_row.max() < int(per_row[rows].sum()) <= 30
    assert rows.tolist() == _sample_rows(per_row, keep, budget=30, random_state=1).tolist()
    assert _sample_rows(per_row, keep, budget=47, random_state=1).tolist() == list(range(10))
    # validation shoppers are kept even when they alone pass the budget
    assert _sample_rows(per_row, keep, budget=3, random_state=1).tolist() == [2, 7]


def test_a_sampled_search_scores_trials_and_returns_no_factors(small_store):
    interactions, _ = small_store
    users, items = build_index(interactions)
    truth_users = np.arange(0, 300, 7)
    truth = relevance_matrix(
        interactions, users.ids[truth_users], users.lookup, items.lookup, len(items)
    )
    common = dict(
        weights=EventWeights(),
        default=AlsParams(factors=8, iterations=3),
        default_half_life=None,
        k=10,
        exclude_seen=False,
        trials=2,
        random_state=3,
        reference_ts=int(interactions.timestamps.max()),
    )

    full = search_als(interactions, users, items, truth, truth_users, **common)
    sampled = search_als(interactions, users, items, truth, truth_users, max_events=4_000, **common)

    assert full.factors is not None
    assert full.factors[0].shape[0] == len(users)
    assert sampled.factors is None
    assert len(sampled.trials) == 2
    assert sampled.score > 0


def test_artifact_arrays_are_mapped_aligned_and_read_only(tmp_path):
    arrays = {
        "f": np.arange(12, dtype=np.float32).reshape(3, 4),
        "ids": np.array(["a", "bb"]),
        "empty": np.zeros((0, 5), np.int32),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
    }
    save_arrays(tmp_path / "arrays.npz", arrays)

    loaded = load_arrays(tmp_path / "arrays.npz")
    with np.load(tmp_path / "arrays.npz") as plain:  # still an ordinary npz
        assert sorted(plain.files) == sorted(arrays)

    for name, value in arrays.items():
        np.testing.assert_array_equal(loaded[name], value)
        assert loaded[name].dtype == value.dtype
    assert is_mapped(loaded["f"])
    assert not is_mapped(loaded["empty"])
    assert loaded["f"].ctypes.data % 64 == 0
    with pytest.raises(ValueError, match="read-only"):
        loaded["f"][0, 0] = 1.0


def test_artifacts_written_by_np_savez_still_load_mapped(trained, tmp_path):
    model = trained.model
    model.save(tmp_path / "model")
    # the previous writer: np.savez of the same arrays
    np.savez(tmp_path / "model" / "arrays.npz", **model.arrays)

    loaded = RecommenderModel.load(tmp_path / "model")

    assert is_mapped(loaded.arrays["item_factors"])
    users = model.user_index.ids[:20].tolist()
    a = loaded.recommend_for_users(users, k=10)
    b = model.recommend_for_users(users, k=10)
    assert [[item for item, _ in r] for r in a] == [[item for item, _ in r] for r in b]
    with zipfile.ZipFile(tmp_path / "model" / "arrays.npz") as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}


def test_resident_bytes_leave_out_mapped_arrays(trained, tmp_path):
    model = trained.model
    model.save(tmp_path / "model")
    loaded = RecommenderModel.load(tmp_path / "model")

    fitted = model.resident_bytes()
    mapped = loaded.resident_bytes()

    arrays = sum(a.nbytes for a in model.arrays.values())
    assert fitted > arrays  # every array in memory, plus what loading derives
    assert mapped < fitted - arrays // 2
    assert mapped > loaded.user_index.resident_bytes()


def test_seen_cells_have_the_user_item_tables_layout(small_store):
    interactions, _ = small_store
    users, items = build_index(interactions.subset(np.arange(0, len(interactions), 2)))

    seen = build_seen_cells(interactions, users, items)
    full = build_user_item_table(
        interactions,
        users,
        items,
        EventWeights(),
        reference_ts=T0,
        half_life_days=None,
        repeat_event=None,
    )

    assert seen.data == {}
    assert seen.shape == full.shape
    np.testing.assert_array_equal(seen.indptr, full.indptr)
    np.testing.assert_array_equal(seen.indices, full.indices)
