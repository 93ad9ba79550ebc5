"""Fresh serving: one shopper's list re-scored with the events they sent since training.

The user vector is folded in from the stored item factors (the closed-form ALS user solve with
the model's regularization, alpha and weighting), and candidates and re-ranker features are
computed from the live history (training cells plus the new events) as of the newest event,
through the same :class:`~ml.model.state.ShopperState` code path training uses.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import scipy.sparse as sp

from ml.candidates.als import AlsParams
from ml.data import EVENT_TYPES, EventWeights, UserItemTable, time_decay
from ml.data.matrix import PLAIN_TYPES
from ml.model.config import Recommendations
from ml.model.state import live_state, live_table

# implicit's BM25 constants (see ml.candidates.als.weight_matrix).
_BM25_K1, _BM25_B = 100.0, 0.8

NewEvent = (
    tuple[str, str, float]
    | tuple[str, str, float, float | None]
    | tuple[str, str, float, float | None, str | None]
)


class FreshServing:
    """Mixin of :class:`~ml.model.artifact.RecommenderModel`: lists re-scored with new events."""

    def recommend_fresh(
        self,
        user_id: str,
        new_events: Sequence[NewEvent],
        k: int = 100,
        exclude_seen: bool = True,
        exclude_item_ids: Collection[str] = (),
        now: float | None = None,
    ) -> Recommendations:
        """Top ``k`` for ``user_id`` given the events they sent since training.

        ``new_events``: ``(item_id, event_type, unix_ts)`` oldest first; a 4th element, when
        present, is the rating value of a ``rating`` event (without it a rating counts as a
        mid rating, as in training); a 5th, when present, is the order id of a ``purchase``
        (None or "" when unknown), which feeds the basket features. Events on items the model
        does not know are ignored; event types the engine does not weigh (e.g. ``dismiss``)
        only mark their item seen.

        A known shopper's vector is their stored one moved by the fold-in difference the new
        events make (so no new events gives exactly :meth:`recommend_for_user`'s list); an
        unknown shopper's is folded in from the new events alone, and without any item the
        factors know about they get :meth:`recommend_for_user`'s session / trending list.
        With ``exclude_seen`` the training items and every item in ``new_events`` are left
        out; ``exclude_item_ids`` are always left out. Deterministic; never raises for
        unknown ids.

        Recency features are computed as of ``now`` (unix seconds, the request time) or, when
        it is None, the newest event (never before the model's reference time): given the
        request time, the list is the one training scored for a prediction at that time.
        """
        always = {i for i in self.item_index.lookup(list(exclude_item_ids)).tolist() if i >= 0}
        u = self.user_index.get(str(user_id))
        items, weights, stamps, repeat, orders, touched = self._parse_new_events(new_events)
        touched_extra = touched if exclude_seen else np.zeros(0, np.int64)
        table = live_table(self, u, items, weights, stamps, repeat, orders)
        known_items = table.indices[self.arrays["n_users_item"][table.indices] >= 1]
        if not self.has_als or (u is None and len(known_items) == 0):
            ids = self.item_index.ids
            recent = [str(ids[i]) for i in touched.tolist()]
            recs = self.recommend_for_user(
                str(user_id), k=k + len(always), exclude_seen=exclude_seen, recent_item_ids=recent
            )
            excluded = {str(ids[i]) for i in always}
            kept = [(i, s) for i, s in recs.items if i not in excluded][:k]
            return Recommendations(kept, recs.strategy)

        factors = self._fresh_factors(u, table)
        ref = max(float(self.reference_ts), float(stamps.max(initial=0)), float(now or 0))
        state = live_state(self, table, factors, ref)
        if len(touched_extra):
            cells = np.union1d(state.seen.indices, touched_extra).astype(np.int32)
            state.seen = sp.csr_matrix(
                (np.ones(len(cells), np.float32), cells, np.array([0, len(cells)])),
                shape=(1, self.n_items),
            )
        k = max(0, min(int(k), self.n_items))
        wide = min(self.n_items, k + len(always))
        got, scores, reasons = self._rank_state(state, wide, exclude_seen, explain=True)
        names = self._item_objects
        kept = [
            j
            for j, i in enumerate(got[0].tolist())
            if i >= 0 and i not in always
        ][:k]  # fmt: skip
        items, values = got[0].tolist(), scores[0].tolist()
        out = [(names[items[j]], values[j]) for j in kept]
        why = reasons.encoded(0, items, names)
        return Recommendations(out, self.strategy, [why[j] for j in kept])

    # ------------------------------------------------------------------ helpers
    def _parse_new_events(
        self, new_events: Sequence[NewEvent]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(items, weights, stamps, is_repeat, order_ids) of the weighed events on known items,
        in time order (order id "" unless a purchase names one), and every known item touched
        by any event (first-touch order).
        """
        weights = EventWeights.from_dict(dict(self.meta.get("weights") or {}))
        rating_range = self.meta.get("rating_range")
        repeat_event = self.meta.get("repeat_event")
        rows: list[tuple[float, int, float, bool, str]] = []
        touched: dict[int, None] = {}
        for event in new_events:
            i = self.item_index.get(str(event[0]))
            if i is None:
                continue
            touched[i] = None
            etype = str(event[1])
            if etype not in EVENT_TYPES:
                continue
            value = event[3] if len(event) > 3 else None
            order_id = event[4] if len(event) > 4 and etype == "purchase" else None
            rows.append(
                (
                    float(event[2]),
                    i,
                    _event_weight(weights, etype, value, rating_range),
                    repeat_event is None or etype == repeat_event,
                    "" if order_id is None else str(order_id),
                )
            )
        rows.sort(key=lambda r: r[0])  # stable: same-second events keep their order
        stamps = np.array([r[0] for r in rows], dtype=np.float64)
        decay = time_decay(stamps, self.reference_ts, self.meta.get("half_life_days"))
        return (
            np.array([r[1] for r in rows], dtype=np.int64),
            np.array([r[2] for r in rows], dtype=np.float64) * decay,
            stamps,
            np.array([r[3] for r in rows], dtype=bool),
            np.array([r[4] for r in rows], dtype=object),
            np.array(list(touched), dtype=np.int64),
        )

    def _fresh_factors(self, u: int | None, table: UserItemTable) -> np.ndarray:
        """The shopper's ALS vector with the live cells (stored + fold-in difference)."""
        live = self._fold_in(table.indices, table.data["weight"])
        if u is None:
            return live
        t = self.table
        lo, hi = int(t.indptr[u]), int(t.indptr[u + 1])
        stored = self.arrays["user_factors"][u].astype(np.float64)
        if hi - lo == len(table.indices) and np.array_equal(
            t.data["weight"][lo:hi], table.data["weight"]
        ):
            return stored
        return stored + live - self._fold_in(t.indices[lo:hi], t.data["weight"][lo:hi])

    def _fold_in(self, items: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Closed-form ALS user solve against the stored item factors (implicit's
        ``recalculate_user``): ``x = (YᵀY + λI + Yᵀ(C-I)Y)^-1 YᵀCp`` with ``C`` the cells'
        confidence after the model's weighting, times alpha.
        """
        params, yty, len_norm = self._fold_cache()
        y = self.arrays["item_factors"][items].astype(np.float64)
        c = (
            _weighted(
                params.weighting,
                weight.astype(np.float32).astype(np.float64),
                items,
                len_norm,
                self.n_items,
            )
            * params.alpha
        )
        a = yty + params.regularization * np.eye(yty.shape[0])
        b = (np.where(c > 0, c, 0.0)[:, None] * y).sum(axis=0)
        a += (y.T * (np.abs(c) - 1.0)) @ y
        return np.linalg.solve(a, b)

    def _fold_cache(self) -> tuple[AlsParams, np.ndarray, np.ndarray]:
        """ALS params, YᵀY and BM25 item length norms, computed once per model."""
        cache = self.__dict__.get("_fold")
        if cache is None:
            params = AlsParams.from_dict(dict(self.meta.get("als_params") or {}))
            y = self.arrays["item_factors"].astype(np.float64)
            sums = np.bincount(
                self.table.indices,
                weights=self.table.data["weight"].astype(np.float32),
                minlength=self.n_items,
            )
            len_norm = (1.0 - _BM25_B) + _BM25_B * sums / max(float(sums.mean()), 1e-12)
            cache = self.__dict__["_fold"] = (params, y.T @ y, len_norm)
        return cache


def _event_weight(weights: EventWeights, etype: str, value: object, rating_range: object) -> float:
    """Confidence of one event as :func:`~ml.data.event_weights_array` gives it."""
    if etype in PLAIN_TYPES:
        return float(getattr(weights, etype))
    if etype != "rating":
        return 0.0
    scaled = 0.5
    if value is not None and rating_range:
        lo, hi = float(rating_range[0]), float(rating_range[1])
        scaled = min(max((float(value) - lo) / (hi - lo), 0.0), 1.0) if hi > lo else 1.0
    floor = weights.rating_floor
    return weights.rating * (floor + (1.0 - floor) * scaled)


def _weighted(
    weighting: str, x: np.ndarray, items: np.ndarray, len_norm: np.ndarray, n_items: int
) -> np.ndarray:
    """One shopper's cells after :func:`~ml.candidates.als.weight_matrix`'s re-weighting (the
    item statistics are the training ones; the shopper's own count is live).
    """
    if weighting == "log":
        return np.log1p(x)
    if weighting in ("bm25", "tfidf"):
        idf = np.log(float(n_items)) - np.log1p(float(len(items)))
        if weighting == "tfidf":
            return np.sqrt(x) * idf
        return x * (_BM25_K1 + 1.0) / (_BM25_K1 * len_norm[items] + x) * idf
    return x
