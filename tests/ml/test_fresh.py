"""Fresh serving: lists re-scored with the events a shopper sent since training."""

from __future__ import annotations

import numpy as np
import pytest

from ml.model import candidate_features
from ml.model.state import live_state, live_table, stored_state


@pytest.fixture(scope="module")
def model(trained):
    assert trained.model.strategy == "als+rerank"
    return trained.model


def _known_users(model, n: int = 5) -> list[str]:
    return [str(x) for x in model.user_index.ids[:n]]


def _after(model, days: float) -> float:
    return float(model.reference_ts + days * 86_400)


def test_no_new_events_gives_exactly_the_precomputed_list(model):
    for user in _known_users(model):
        for exclude_seen in (True, False):
            fresh = model.recommend_fresh(user, [], k=20, exclude_seen=exclude_seen)
            static = model.recommend_for_user(user, k=20, exclude_seen=exclude_seen)

            assert fresh.items == static.items
            assert fresh.strategy == static.strategy


def test_live_state_at_the_reference_time_gives_the_training_features(model):
    for user in _known_users(model):
        u = model.user_index.get(user)
        cands, rank = model.candidates(np.array([u]), exclude_seen=True)
        empty = np.zeros(0)
        table = live_table(model, u, empty.astype(np.int64), empty, empty, empty.astype(bool))
        state = live_state(model, table, model.arrays["user_factors"][u], model.reference_ts)

        trained_x = candidate_features(model, stored_state(model, np.array([u])), cands, rank)
        live_x = candidate_features(model, state, cands, rank)

        np.testing.assert_array_equal(live_x, trained_x)


def test_a_just_rated_item_leaves_the_list(model):
    user = _known_users(model, 1)[0]
    top = model.recommend_for_user(user, k=10).item_ids[0]

    fresh = model.recommend_fresh(user, [(top, "purchase", _after(model, 1))], k=10)

    assert top not in fresh.item_ids
    assert len(fresh) == 10


def test_a_dismissed_item_is_excluded_even_when_seen_items_are_allowed(model):
    user = _known_users(model, 1)[0]
    top = model.recommend_for_user(user, k=10, exclude_seen=False).item_ids[:2]

    fresh = model.recommend_fresh(
        user,
        [(top[0], "dismiss", _after(model, 1))],
        k=10,
        exclude_seen=False,
        exclude_item_ids=top,
    )

    assert not set(top) & set(fresh.item_ids)
    assert len(fresh) == 10


def test_an_event_moves_the_list_towards_similar_items(model):
    unit = model.item_unit
    rises = 0
    users = _known_users(model, 10)
    for user in users:
        before = model.recommend_for_user(user, k=10).item_ids
        u = model.user_index.get(user)
        seen = set(model.seen_items(user))
        # An item unlike what the shopper liked so far: least similar to their vector.
        score = model.item_unit @ model.arrays["user_factors"][u]
        target = next(
            model.item_index.ids[i]
            for i in np.argsort(score).tolist()
            if model.item_index.ids[i] not in seen and model.arrays["n_users_item"][i] >= 2
        )
        t = model.item_index.get(target)
        events = [(target, "purchase", _after(model, 1)), (target, "add_to_cart", _after(model, 1))]
        after = model.recommend_fresh(user, events, k=10).item_ids

        def mean_sim(items: list[str], t: int = t) -> float:
            return float(np.mean([unit[model.item_index.get(i)] @ unit[t] for i in items]))

        rises += mean_sim(after) > mean_sim(before)
    assert rises >= 0.8 * len(users)


def test_an_unknown_shopper_with_events_gets_a_personal_list(model):
    trending = model.trending(k=10).item_ids
    liked = model.similar_items(trending[-1], k=3).item_ids
    events = [(i, "purchase", _after(model, 1) + n) for n, i in enumerate(liked)]

    fresh = model.recommend_fresh("nobody-yet", events, k=10)

    assert fresh.strategy == model.strategy
    assert fresh.item_ids != trending[:10]
    assert not set(liked) & set(fresh.item_ids)
    assert len(fresh) == 10


def test_an_unknown_shopper_without_known_items_gets_the_session_logic(model):
    fresh = model.recommend_fresh("nobody-yet", [("no-such-item", "view", _after(model, 1))], k=10)

    assert fresh.items == model.recommend_for_user("nobody-yet", k=10).items
    assert fresh.strategy == "trending"


def test_excluded_ids_are_always_left_out_and_output_is_deterministic(model):
    user = _known_users(model, 1)[0]
    events = [(str(model.item_index.ids[3]), "view", _after(model, 2))]
    first = model.recommend_fresh(user, events, k=30)
    banned = first.item_ids[:5]

    again = model.recommend_fresh(user, events, k=30, exclude_item_ids=banned)
    twice = model.recommend_fresh(user, events, k=30, exclude_item_ids=banned)

    assert not set(banned) & set(again.item_ids)
    assert again.items == twice.items
    assert again.item_ids == [i for i in first.item_ids if i not in banned] + again.item_ids[25:]
