"""End-to-end training: search, re-ranker, honest evaluation, final refit on all data.

Data flow (no step ever looks at the data of a later step)::

    all events ──per-user time split──► train_e │ test_e        (evaluation; test_e scores only)
    train_e    ──per-user time split──► inner   │ val           (search, ranker, model choice)

Stores whose events are mostly order lines (purchases naming their order) are split at each
shopper's last order instead (next-basket prediction). Every list scored is computed as of its
shopper's prediction time (their first held-out event), through the serving code path.

1. ALS hyper-parameters are searched on inner → val (a fixed number of trials).
2. The re-ranker learns from candidates of a model fitted on ``inner`` with labels from ``val``
   for 80% of the val shoppers; the other 20% choose the strategy (popularity / ALS /
   ALS + re-rank) by NDCG@k.
3. Models refitted on ``train_e`` (with that ranker) are scored on ``test_e`` for the report.
4. The delivered model is refitted on all events with the chosen parameters and the same ranker,
   exactly as evaluated one level down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from ml.candidates.als import AlsParams
from ml.data import (
    Catalog,
    EventWeights,
    Interactions,
    build_index,
    build_seen_cells,
)
from ml.data.cleaning import distinct_users, drop_duplicate_events, repeat_share
from ml.evaluation import (
    first_event_times,
    per_user_last_order_split,
    per_user_time_split,
    ranking_metrics,
    relevance_matrix,
)
from ml.model import FitOptions, RecommenderModel, attach_ranker, fit_model
from ml.ranker import RankerParams, fit_ranker, training_frame
from ml.search import search_als

Progress = Callable[[str, int], None]

LARGE_STORE_EVENTS = 2_000_000
MIN_LARGE_STORE_TRIALS = 4
ORDER_LINE_SHARE = 0.5


def search_trial_count(trials: int, n_events: int) -> int:
    """Trials the search runs for a store of ``n_events`` events: ``trials`` up to
    :data:`LARGE_STORE_EVENTS` events; beyond, ``trials * LARGE_STORE_EVENTS / n_events``
    (each trial costs about the events it fits), never fewer than
    :data:`MIN_LARGE_STORE_TRIALS` nor more than ``trials``. Depends on the data only, never
    on the machine.
    """
    trials = max(1, int(trials))
    if n_events <= LARGE_STORE_EVENTS:
        return trials
    scaled = trials * LARGE_STORE_EVENTS // max(n_events, 1)
    return min(trials, max(MIN_LARGE_STORE_TRIALS, scaled))


def orders_known(interactions: Interactions) -> bool:
    """True when at least :data:`ORDER_LINE_SHARE` of the events are purchases naming their
    order: the store's shoppers come in baskets, and the next basket is what to predict."""
    n = len(interactions)
    return n > 0 and int(interactions.order_mask().sum()) >= ORDER_LINE_SHARE * n


@dataclass
class TrainingConfig:
    """Training knobs; JSON-serialisable through :meth:`to_dict` / :meth:`from_dict`.

    ``search_trials`` is how many ALS settings the hyper-parameter search fits (the default
    first, then seeded random grid points), so results do not depend on the machine; stores
    with more than :data:`LARGE_STORE_EVENTS` events get proportionally fewer, never fewer than
    :data:`MIN_LARGE_STORE_TRIALS` (see :func:`search_trial_count`). ``exclude_seen=None``
    decides from the data: stores where shoppers mostly come back to items they already had
    (groceries) are evaluated, and their re-ranker trained, with seen items allowed.
    """

    k: int = 10
    search_trials: int = 12
    search: bool = True
    random_state: int = 42
    event_weights: EventWeights = field(default_factory=EventWeights)
    half_life_days: float | None = None
    als: AlsParams = field(default_factory=AlsParams)
    ranker: RankerParams = field(default_factory=RankerParams)
    rerank: bool = True
    exclude_seen: bool | None = None
    test_fraction: float = 0.2
    min_user_interactions: int = 5
    max_eval_users: int = 10_000
    trending_half_life_days: float = 7.0
    cooccurrence_measure: str = "jaccard"
    cooccurrence_min_support: int = 2
    min_interactions: int = 30
    min_eval_users: int = 10

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["event_weights"] = self.event_weights.to_dict()
        d["als"] = self.als.to_dict()
        d["ranker"] = self.ranker.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> TrainingConfig:
        """Inverse of :meth:`to_dict`; unknown keys are ignored, missing keys keep defaults.

        Configs stored before the search was budgeted by trials name ``time_budget_seconds``
        instead: they get about one trial per second of that budget (what it bought on
        MovieLens-100K), at least one.
        """
        known = set(cls.__dataclass_fields__)
        kwargs = {k: v for k, v in data.items() if k in known}
        legacy_budget = data.get("time_budget_seconds")
        if "search_trials" not in data and isinstance(legacy_budget, int | float):
            kwargs["search_trials"] = max(1, round(float(legacy_budget)))
        if isinstance(kwargs.get("event_weights"), dict):
            kwargs["event_weights"] = EventWeights.from_dict(kwargs["event_weights"])
        if isinstance(kwargs.get("als"), dict):
            kwargs["als"] = AlsParams.from_dict(kwargs["als"])
        if isinstance(kwargs.get("ranker"), dict):
            kwargs["ranker"] = RankerParams.from_dict(kwargs["ranker"])
        return cls(**kwargs)


@dataclass
class TrainingResult:
    """The delivered model (fitted on all events) and the evaluation report."""

    model: RecommenderModel
    metrics: dict[str, object]


def train(
    interactions: Interactions,
    catalog: Catalog,
    config: TrainingConfig,
    *,
    now: int | None = None,
    progress: Progress | None = None,
) -> TrainingResult:
    """Train, evaluate and refit a recommender for one store.

    ``now`` (unix seconds, default: the latest event) is the reference time of the delivered
    model's recency features. ``progress(stage, percent)`` is called at each stage. Never raises
    for small or odd data: it falls back to popularity and says why in
    ``metrics["final"]["strategy"]`` / ``["reason"]``.

    ``metrics`` keys: ``popularity``, ``als``, ``reranker``, ``final`` (each with
    ``ndcg@k, precision@k, recall@k, map@k, coverage, users`` on the test split and
    ``validation_ndcg@k``, the figure the strategy was chosen on; absent models are omitted),
    ``validation`` (NDCG@k per strategy on the validation shoppers), ``split`` (``"last
    order"`` or ``"per-user time"``), ``users``, ``items``, ``interactions`` (after dropping
    exact duplicates, counted in ``duplicates_dropped``), ``training_seconds``,
    ``hyperparams``, ``search_trials`` (one entry per trial), ``exclude_seen``, ``timings``.
    """
    t_start = time.perf_counter()
    report = progress or (lambda _stage, _pct: None)
    timings: dict[str, float] = {}
    k = config.k
    catalog = catalog if catalog is not None else Catalog.empty()
    interactions, n_duplicates = drop_duplicate_events(interactions)
    _, all_items = build_index(interactions, catalog)
    metrics: dict[str, object] = {
        "users": len(distinct_users(interactions)),
        "items": len(all_items),
        "interactions": len(interactions),
        "duplicates_dropped": n_duplicates,
        "k": k,
        "config": config.to_dict(),
    }
    options = FitOptions(
        als=config.als,
        weights=config.event_weights,
        half_life_days=config.half_life_days,
        trending_half_life_days=config.trending_half_life_days,
        cooccurrence_measure=config.cooccurrence_measure,
        cooccurrence_min_support=config.cooccurrence_min_support,
        random_state=config.random_state,
    )
    report("prepare", 0)

    def finish(model: RecommenderModel, final: dict[str, object]) -> TrainingResult:
        metrics["final"] = final
        metrics["training_seconds"] = round(time.perf_counter() - t_start, 3)
        metrics["timings"] = {k_: round(v, 3) for k_, v in timings.items()}
        model.meta["trained_with"] = {"strategy": final["strategy"], "k": k}
        report("done", 100)
        return TrainingResult(model=model, metrics=metrics)

    def popularity_only(reason: str) -> TrainingResult:
        model = fit_model(interactions, catalog, _replace(options, als=None), reference_ts=now)
        final = {**metrics.get("popularity", {}), "strategy": "popularity", "reason": reason}
        metrics.setdefault("hyperparams", None)
        return finish(model, final)

    n_users = int(metrics["users"])
    if len(interactions) < config.min_interactions or n_users < 3 or len(all_items) < 3:
        return popularity_only(
            f"too little data ({len(interactions)} events, {n_users} shoppers, "
            f"{len(all_items)} items): popularity only"
        )

    # --- 1. evaluation split and inner (validation) split, both inside the data -------------
    t0 = time.perf_counter()
    by_order = orders_known(interactions)
    metrics["split"] = "last order" if by_order else "per-user time"

    def split(events: Interactions) -> tuple[Interactions, Interactions]:
        if by_order:
            return per_user_last_order_split(events)
        return per_user_time_split(
            events,
            test_fraction=config.test_fraction,
            min_interactions=config.min_user_interactions,
        )

    train_e, test_e = split(interactions)
    inner, val = split(train_e)
    exclude_seen = config.exclude_seen
    repeats = repeat_share(inner, val)
    if exclude_seen is None:
        # Shoppers coming back to what they already had is the signal worth serving when it is a
        # large part of what they do next (groceries, consumables).
        exclude_seen = repeats < 0.3
    metrics["exclude_seen"] = exclude_seen
    metrics["repeat_share"] = round(repeats, 4)
    timings["split"] = time.perf_counter() - t0

    inner_users, inner_items = build_index(inner, catalog)
    val_users = np.array(sorted(distinct_users(val)), dtype=str)
    val_rows = inner_users.lookup(val_users)
    val_users = val_users[val_rows >= 0]
    val_rows = val_rows[val_rows >= 0]
    rng = np.random.default_rng(config.random_state)
    if len(val_users) > config.max_eval_users:
        pick = np.sort(rng.choice(len(val_users), config.max_eval_users, replace=False))
        val_users, val_rows = val_users[pick], val_rows[pick]

    # Truth for validation shoppers (model rows of the inner fit).
    inner_seen = build_seen_cells(inner, inner_users, inner_items) if exclude_seen else None
    val_truth = relevance_matrix(
        val, val_users, inner_users.lookup, inner_items.lookup, len(inner_items), exclude=inner_seen
    )
    has_truth = np.diff(val_truth.indptr) > 0
    val_users, val_rows, val_truth = val_users[has_truth], val_rows[has_truth], val_truth[has_truth]
    val_as_of = first_event_times(val, val_users)
    if len(val_users) < config.min_eval_users:
        return popularity_only(
            f"only {len(val_users)} shoppers with enough history to validate on: popularity only"
        )

    # --- 2. hyper-parameter search -----------------------------------------------------------
    report("search", 10)
    t0 = time.perf_counter()
    found = search_als(
        inner,
        inner_users,
        inner_items,
        val_truth,
        val_rows,
        weights=config.event_weights,
        default=config.als,
        default_half_life=config.half_life_days,
        k=k,
        exclude_seen=exclude_seen,
        trials=search_trial_count(config.search_trials, len(interactions)),
        enabled=config.search,
        random_state=config.random_state,
        reference_ts=int(inner.timestamps.max()),
    )
    options = _replace(options, als=found.params, half_life_days=found.half_life_days)
    metrics["hyperparams"] = {**found.params.to_dict(), "half_life_days": found.half_life_days}
    metrics["search_trials"] = found.trials
    timings["search"] = time.perf_counter() - t0

    # --- 3. re-ranker on inner → val, strategy choice on held-out validation shoppers --------
    report("reranker", 35)
    t0 = time.perf_counter()
    inner_model = fit_model(inner, catalog, options, precomputed_factors=found.factors)
    timings["fit_inner"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    order = rng.permutation(len(val_users))
    n_hold = max(config.min_eval_users, len(order) // 5)
    hold, fit_part = np.sort(order[:n_hold]), np.sort(order[n_hold:])
    booster = None
    max_users = max(1, config.ranker.max_rows // inner_model.pool_width(exclude_seen))
    if config.rerank and len(fit_part) >= 2 * config.min_eval_users:
        fit_part = fit_part[:max_users] if len(fit_part) > max_users else fit_part
        x, y, groups = training_frame(
            inner_model,
            val_rows[fit_part],
            val_truth[fit_part],
            exclude_seen=exclude_seen,
            as_of=val_as_of[fit_part],
        )
        if len(groups) >= config.min_eval_users:
            booster = fit_ranker(x, y, groups, config.ranker, k=k, random_state=config.random_state)
        metrics["ranker_training"] = {
            "rows": len(y),
            "groups": len(groups),
            "positives": int(y.sum()),
        }
    else:
        hold = np.arange(len(val_users))  # no ranker: every validation shopper chooses
    timings["ranker"] = time.perf_counter() - t0

    validation: dict[str, float] = {}
    candidates_models = {"popularity": inner_model.with_strategy("popularity"), "als": inner_model}
    if booster is not None:
        candidates_models["als+rerank"] = attach_ranker(_shallow(inner_model), booster)
    for name, m in candidates_models.items():
        recs, _ = m.recommend_indices(
            val_rows[hold], k, exclude_seen=exclude_seen, as_of=val_as_of[hold]
        )
        validation[name] = ranking_metrics(recs, val_truth[hold], k, m.n_items)[f"ndcg@{k}"]
    metrics["validation"] = {name: round(v, 5) for name, v in validation.items()}
    chosen = _choose(validation)
    reason = f"best validation NDCG@{k} ({validation[chosen]:.4f})"
    # Big stores: each fitted model holds per-cell arrays; only one is alive at a time.
    del candidates_models, inner_model, m
    found.factors = None

    # --- 4. honest evaluation: refit on train_e, score on test_e -----------------------------
    report("evaluate", 60)
    t0 = time.perf_counter()
    eval_model = fit_model(train_e, catalog, options)
    if booster is not None:
        eval_model = attach_ranker(eval_model, booster)
    timings["fit_eval"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    test_users = np.array(sorted(distinct_users(test_e)), dtype=str)
    test_rows = eval_model.user_index.lookup(test_users)
    test_users, test_rows = test_users[test_rows >= 0], test_rows[test_rows >= 0]
    if len(test_users) > config.max_eval_users:
        pick = np.sort(rng.choice(len(test_users), config.max_eval_users, replace=False))
        test_users, test_rows = test_users[pick], test_rows[pick]
    test_truth = relevance_matrix(
        test_e,
        test_users,
        eval_model.user_index.lookup,
        eval_model.item_index.lookup,
        eval_model.n_items,
        exclude=eval_model.table if exclude_seen else None,
    )
    test_as_of = first_event_times(test_e, test_users)
    named = {"popularity": "popularity", "als": "als", "reranker": "als+rerank"}
    for label, strategy in named.items():
        if strategy == "als+rerank" and booster is None:
            continue
        m = eval_model.with_strategy(strategy)
        recs, _ = m.recommend_indices(test_rows, k, exclude_seen=exclude_seen, as_of=test_as_of)
        metrics[label] = _rounded(ranking_metrics(recs, test_truth, k, m.n_items))
        # The figure this strategy was chosen on, next to its test figure.
        metrics[label][f"validation_ndcg@{k}"] = metrics["validation"][strategy]
    if not exclude_seen:
        recs = eval_model.buy_again_indices(test_rows, k)
        metrics["buy_again"] = _rounded(ranking_metrics(recs, test_truth, k, eval_model.n_items))
    timings["evaluate"] = time.perf_counter() - t0
    del eval_model, m, test_truth, train_e, test_e, inner, val, val_truth, inner_seen

    # --- 5. delivered model: everything, chosen strategy --------------------------------------
    report("refit", 80)
    t0 = time.perf_counter()
    final_model = fit_model(interactions, catalog, options, reference_ts=now)
    if booster is not None:
        final_model = attach_ranker(final_model, booster)
    final_model = final_model.with_strategy(chosen)
    final_model.meta["repeat_store"] = not exclude_seen
    timings["fit_final"] = time.perf_counter() - t0
    label = {v: key for key, v in named.items()}[chosen]
    final = {**metrics[label], "strategy": chosen, "reason": reason, "exclude_seen": exclude_seen}
    return finish(final_model, final)


def _choose(validation: dict[str, float]) -> str:
    """Best validation NDCG; a more complex strategy must win by 1% relative to be chosen."""
    best = "popularity"
    for name in ("als", "als+rerank"):
        if name in validation and validation[name] > validation[best] * 1.01:
            best = name
    return best


def _shallow(model: RecommenderModel) -> RecommenderModel:
    clone = RecommenderModel.__new__(RecommenderModel)
    clone.__dict__.update(model.__dict__)
    clone.meta = dict(model.meta)
    return clone


def _replace(options: FitOptions, **changes: object) -> FitOptions:
    return FitOptions(**{**options.__dict__, **changes})


def _rounded(m: dict[str, float]) -> dict[str, float]:
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in m.items()}
