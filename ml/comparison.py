"""Candidate against active model on the same recent window of events, each served as it would be.

Why not compare held-out figures: each model's NDCG is measured on its own training's held-out
window, so a store whose shoppers got harder to predict retires good models and one that got
easier keeps bad ones. Activation needs both scored on the same events.

The window (leakage, in both directions):

* It is the candidate's own held-out split (the per-user time split of its evaluation: each
  shopper's latest events), restricted to events **after the active model's training window**,
  so the active model never saw a single event it is scored on. Without that restriction an
  active model trained yesterday has already seen most of today's held-out events (and, with
  seen items excluded, could not even recommend them).
* Every other event is history, including held-out events up to the active model's window
  end: the active model saw those, so the candidate must too. Each shopper's window events are
  still their latest ones.
* The candidate is scored through its *recipe* refitted on that history (its hyper-parameters,
  event weights and re-ranker, as in its held-out figure), never through the delivered model,
  which trained on the window.
* Both are asked for each shopper's list the way serving asks: the stored shopper vector
  moved by the fold-in of the shopper's events since that model's training
  (:meth:`~ml.model.RecommenderModel.recommend_fresh`), so the active model knows everything the
  shopper did before the window, as the live system would. What still differs is what
  retraining is for: the candidate's item side learned from every shopper's history, the
  active model's only from events up to its training. The split is per shopper, so other
  shoppers' history may be later than a window event (as in every held-out figure here).

Truth per shopper: the items of their window events; when seen items are excluded, minus what
they had in their history (those can never be recommended). Scored with
:func:`ml.evaluation.ranking_metrics` at ``k``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ml.candidates.als import AlsParams
from ml.data import Catalog, EventWeights, Interactions
from ml.data.cleaning import drop_duplicate_events
from ml.evaluation import per_user_time_split, ranking_metrics
from ml.model import FitOptions, RecommenderModel, attach_ranker, fit_model
from ml.pipeline import TrainingConfig


@dataclass(frozen=True)
class WindowComparison:
    """Both models' ranking metrics (``ndcg@k``, ``precision@k``, ...) on one window."""

    candidate: dict[str, float]
    active: dict[str, float]
    shoppers: int
    events: int
    since: int  # unix seconds: the window holds held-out events strictly after this


def compare_on_recent_window(
    interactions: Interactions,
    catalog: Catalog | None,
    *,
    candidate: RecommenderModel,
    active: RecommenderModel,
    active_until: int,
    config: TrainingConfig,
    max_shoppers: int = 1_000,
) -> WindowComparison | None:
    """Score ``candidate``'s recipe and ``active`` on the held-out events after ``active_until``.

    ``interactions`` and ``config`` are what the candidate was trained with; ``active_until``
    (unix seconds) is the end of the active model's training window. At most ``max_shoppers``
    shoppers of the window are scored (a sample drawn with ``config.random_state``). Returns
    None when the candidate serves popularity or fewer than ``config.min_eval_users`` shoppers
    have something left to predict in the window (too soon after the active model's training
    to tell them apart). Deterministic; never touches ``active``.
    """
    if candidate.strategy == "popularity" or len(interactions) == 0:
        return None
    if int(interactions.timestamps.max()) <= int(active_until):
        return None  # nothing happened since the active model's training: no copies needed
    interactions, _ = drop_duplicate_events(interactions)
    _, held_out = per_user_time_split(
        interactions,
        test_fraction=config.test_fraction,
        min_interactions=config.min_user_interactions,
    )
    window = held_out.subset(held_out.timestamps > int(active_until))
    if len(window) == 0:
        return None  # nothing happened since the active model's training
    # Everything else is history, held-out events up to `active_until` included: the active
    # model saw those, so the candidate must too. A shopper's window events are still their
    # latest ones (their held-out part is their latest events, in time order).
    history = _without(interactions, window)
    exclude_seen = not candidate.repeat_store
    truth = _window_truth(history, window, exclude_seen=exclude_seen)
    shoppers = sorted(truth)
    if len(shoppers) > max_shoppers:
        rng = np.random.default_rng(config.random_state)
        shoppers = sorted(rng.choice(shoppers, max_shoppers, replace=False).tolist())
    if len(shoppers) < max(1, config.min_eval_users):
        return None
    past = _recipe_refit(candidate, history, catalog, config)
    events_by_shopper = _events_by_shopper(history, set(shoppers))
    k = config.k
    figures = [
        _score(model, shoppers, truth, events_by_shopper, k=k, exclude_seen=exclude_seen)
        for model in (past, active)
    ]
    shown = set(shoppers)
    n_events = int(_of_shoppers(window, shown).sum())
    return WindowComparison(
        candidate=figures[0],
        active=figures[1],
        shoppers=len(shoppers),
        events=n_events,
        since=int(active_until),
    )


def _without(interactions: Interactions, window: Interactions) -> Interactions:
    """``interactions`` minus the events of ``window``, a subset of it. Exact duplicates were
    dropped before the split, so (shopper, item, type, second) names one event; vectorised
    (a split of ten million events must not build ten million Python tuples)."""

    def cells(events: Interactions) -> np.ndarray:
        # subsets share their parent's code vocabularies (Interactions.subset)
        users, items, kinds = (events.codes(c)[0] for c in ("user_ids", "item_ids", "event_types"))
        n_items = len(interactions.codes("item_ids")[1])
        n_kinds = len(interactions.codes("event_types")[1])
        return (users.astype(np.int64) * n_items + items) * n_kinds + kinds

    every = cells(interactions)
    distinct, rank = np.unique(every, return_inverse=True)
    first = int(interactions.timestamps.min())
    span = int(interactions.timestamps.max()) - first + 1
    key = rank.astype(np.int64) * span + (interactions.timestamps - first)
    window_rank = np.searchsorted(distinct, cells(window))
    window_key = window_rank.astype(np.int64) * span + (window.timestamps - first)
    return interactions.subset(~np.isin(key, window_key))


def _window_truth(
    history: Interactions, window: Interactions, *, exclude_seen: bool
) -> dict[str, set[str]]:
    """Shopper -> items to predict; shoppers left with nothing are dropped."""
    truth: dict[str, set[str]] = defaultdict(set)
    for user, item in zip(window.user_ids.tolist(), window.item_ids.tolist(), strict=True):
        truth[str(user)].add(str(item))
    if exclude_seen and truth:
        # Only the window's shoppers' history, picked by code: the history is millions of events.
        history = history.subset(_of_shoppers(history, set(truth)))
        for user, item in zip(history.user_ids.tolist(), history.item_ids.tolist(), strict=True):
            items = truth.get(str(user))
            if items is not None:
                items.discard(str(item))
    return {user: items for user, items in truth.items() if items}


def _of_shoppers(events: Interactions, shoppers: set[str]) -> np.ndarray:
    """Boolean mask of the events of ``shoppers`` (through the codes)."""
    codes, vocab = events.codes("user_ids")
    wanted = np.fromiter((str(u) in shoppers for u in vocab.tolist()), dtype=bool, count=len(vocab))
    return wanted[codes] if len(codes) else np.zeros(0, dtype=bool)


def _recipe_refit(
    candidate: RecommenderModel,
    history: Interactions,
    catalog: Catalog | None,
    config: TrainingConfig,
) -> RecommenderModel:
    """The candidate's model as its training evaluated it: same hyper-parameters, weights and
    re-ranker, fitted on the history only."""
    meta = candidate.meta
    als = meta.get("als_params")
    options = FitOptions(
        als=AlsParams.from_dict(dict(als)) if als else None,
        weights=EventWeights.from_dict(dict(meta.get("weights") or {})),
        half_life_days=meta.get("half_life_days"),
        trending_half_life_days=config.trending_half_life_days,
        cooccurrence_measure=config.cooccurrence_measure,
        cooccurrence_min_support=config.cooccurrence_min_support,
        random_state=config.random_state,
    )
    model = fit_model(history, catalog, options)
    if candidate.booster is not None:
        model = attach_ranker(model, candidate.booster)
    model.meta["repeat_store"] = candidate.repeat_store
    return model.with_strategy(candidate.strategy)


def _events_by_shopper(
    history: Interactions, shoppers: set[str]
) -> dict[str, list[tuple[int, str, str, float | None, str]]]:
    """Each shopper's history events (ts, item, type, rating or None, order id), oldest first."""
    out: dict[str, list[tuple[int, str, str, float | None, str]]] = defaultdict(list)
    history = history.subset(_of_shoppers(history, shoppers))
    columns = zip(
        history.user_ids.tolist(),
        history.item_ids.tolist(),
        history.event_types.tolist(),
        history.values.tolist(),
        history.timestamps.tolist(),
        history.order_ids.tolist(),
        strict=True,
    )
    for user, item, kind, value, ts, order in columns:
        if user in shoppers:
            rating = None if value != value else float(value)  # NaN: no rating
            out[str(user)].append((int(ts), str(item), str(kind), rating, str(order or "")))
    for events in out.values():
        events.sort(key=lambda e: e[0])
    return out


def _score(
    model: RecommenderModel,
    shoppers: list[str],
    truth: dict[str, set[str]],
    events_by_shopper: dict[str, list[tuple[int, str, str, float | None, str]]],
    *,
    k: int,
    exclude_seen: bool,
) -> dict[str, float]:
    """``model``'s top ``k`` per shopper as serving would answer right now (fold-in of the
    history events newer than the model's training), scored against ``truth``."""
    vocab: dict[str, int] = {}
    lists = np.full((len(shoppers), k), -1, dtype=np.int64)
    rows, cols = [], []
    reference = model.reference_ts
    for r, user in enumerate(shoppers):
        events = events_by_shopper.get(user, [])
        new = [
            (item, kind, ts, rating, order)
            for ts, item, kind, rating, order in events
            if ts > reference
        ]
        had = {e[1] for e in events} if exclude_seen else set()
        recs = model.recommend_fresh(user, new, k=k + len(had), exclude_seen=exclude_seen)
        picked = [item for item, _ in recs.items if item not in had][:k]
        lists[r, : len(picked)] = [vocab.setdefault(item, len(vocab)) for item in picked]
        for item in truth[user]:
            rows.append(r)
            cols.append(vocab.setdefault(item, len(vocab)))
    relevant = sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(shoppers), max(len(vocab), 1))
    )
    metrics = ranking_metrics(lists, relevant, k, model.n_items)
    return {
        key: round(value, 5) if isinstance(value, float) else value
        for key, value in metrics.items()
    }
