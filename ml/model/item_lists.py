"""Single-shopper and single-item lists: session recommendations, trending, popular,
similar, bought together, buy again, segments, seen items and explanations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ml.candidates.als import als_topk
from ml.model.config import N_RECENT, Recommendations
from ml.model.features import FEATURE_NAMES
from ml.sparse_utils import topk_rows


class ItemLists:
    """Mixin of :class:`~ml.model.artifact.RecommenderModel`: lists for one shopper or item."""

    def recommend_for_user(
        self,
        user_id: str,
        k: int = 100,
        exclude_seen: bool = True,
        recent_item_ids: Sequence[str] | None = None,
    ) -> Recommendations:
        """One shopper. Known: as :meth:`recommend_for_users`. Unknown with ``recent_item_ids``
        (e.g. the current session): items similar to / bought with those (``"session"``),
        topped up from the matching segment's favourites, then trending. Unknown without:
        trending (``"trending"``). Items in ``recent_item_ids`` are never returned for an
        unknown shopper when ``exclude_seen``.
        """
        u = self.user_index.get(str(user_id))
        if u is not None:
            items, reasons = self.explained_lists([str(user_id)], k=k, exclude_seen=exclude_seen)[0]
            return Recommendations(items, self.strategy, reasons)
        recent = [i for i in self.item_index.lookup(recent_item_ids or []).tolist() if i >= 0]
        if not recent:
            return Recommendations(self._global_list(self._trend_order, "trending", k), "trending")
        scores = self._session_scores(np.array(recent[-N_RECENT:]))
        exclude = set(recent) if exclude_seen else set()
        chosen: list[tuple[int, float]] = []
        for i in np.lexsort((np.arange(len(scores)), -scores)).tolist():
            if scores[i] <= 0 or len(chosen) >= k:
                break
            if i not in exclude:
                chosen.append((i, float(scores[i])))
        seg = self._segment_for_items(np.array(recent))
        fallback = self.arrays["segment_items"][seg].tolist() if seg is not None else []
        fallback += self._trend_order[: k + len(recent)].tolist()
        taken = {i for i, _ in chosen} | exclude
        floor = chosen[-1][1] if chosen else 0.0
        for i in fallback:
            if len(chosen) >= k:
                break
            if i >= 0 and i not in taken:
                floor -= 1e-3
                chosen.append((i, floor))
                taken.add(i)
        ids = self.item_index.ids
        return Recommendations([(str(ids[i]), s) for i, s in chosen], "session")

    def _session_scores(self, recent: np.ndarray) -> np.ndarray:
        """Score every item by similarity to ``recent`` item indices (later ones weigh more)."""
        weights = np.linspace(0.5, 1.0, len(recent))
        score = np.zeros(self.n_items)
        vec = self._similarity_vectors(recent)
        if vec is not None:
            score += (vec @ (weights[:, None] * vec[recent]).sum(axis=0)) / weights.sum()
        co = self.cooc[recent]
        score += np.asarray(co.multiply(weights[:, None]).sum(axis=0)).ravel()
        return score

    def _similarity_vectors(self, items: np.ndarray) -> np.ndarray | None:
        """ALS unit vectors where the items have events, content vectors otherwise."""
        if self.item_unit is not None:
            n_users_item = self.arrays["n_users_item"]
            if (n_users_item[items] >= 2).all() or not self.has_content:
                return self.item_unit
        return self.arrays["content"] if self.has_content else None

    def _segment_for_items(self, items: np.ndarray) -> int | None:
        centers = self.arrays["segment_centers"]
        if len(centers) == 0 or self.item_unit is None:
            return None
        v = self.item_unit[items].mean(axis=0)
        if not np.any(v):
            return None
        return int(np.argmax(centers @ v))

    def _global_list(self, order: np.ndarray, key: str, k: int) -> list[tuple[str, float]]:
        score = self.arrays["trending" if key == "trending" else "popularity"]
        ids = self.item_index.ids
        return [(str(ids[i]), float(score[i])) for i in order[:k].tolist() if score[i] > 0]

    def trending(self, k: int = 100) -> Recommendations:
        """Items by time-decayed popularity at training time (items with no events omitted)."""
        return Recommendations(self._global_list(self._trend_order, "trending", k), "trending")

    def popular(self, k: int = 100) -> Recommendations:
        """Items by distinct shoppers, all time (items with no events omitted)."""
        return Recommendations(self._global_list(self._pop_order, "popular", k), "popular")

    def similar_items(self, item_id: str, k: int = 20) -> Recommendations:
        """Items most like ``item_id``: ALS item-factor cosine (``"als_item_cosine"``) when the
        item has events from at least 2 shoppers, else content TF-IDF cosine (``"content"``),
        else an empty list (``"none"``). Unknown item ids give ``"none"``.
        """
        i = self.item_index.get(str(item_id))
        if i is None:
            return Recommendations([], "none")
        a = self.arrays
        if self.item_unit is not None and a["n_users_item"][i] >= 2:
            vec, strategy = self.item_unit, "als_item_cosine"
            usable = a["n_users_item"] >= 1
        elif self.has_content and np.any(a["content"][i]):
            vec, strategy = a["content"], "content"
            usable = np.ones(self.n_items, dtype=bool)
        else:
            return Recommendations([], "none")
        sims = vec @ vec[i]
        sims[i] = -np.inf
        sims[~usable] = -np.inf
        top, sc = topk_rows(sims[None, :], k)
        ids = self.item_index.ids
        return Recommendations(
            [
                (str(ids[j]), float(s))
                for j, s in zip(top[0], sc[0], strict=True)
                if j >= 0 and s > 0
            ],
            strategy,
        )

    def bought_together(self, item_id: str, k: int = 20) -> Recommendations:
        """Items co-occurring with ``item_id`` in shoppers' sessions/orders
        (``"cooccurrence"``); topped up — or replaced, for cold items — by
        :meth:`similar_items`, whose strategy is then reported with a ``+`` suffix.
        """
        i = self.item_index.get(str(item_id))
        if i is None:
            return Recommendations([], "none")
        row = self.cooc[i]
        order = np.lexsort((row.indices, -row.data))[:k]
        ids = self.item_index.ids
        items = [(str(ids[row.indices[j]]), float(row.data[j])) for j in order]
        if len(items) >= k:
            return Recommendations(items, "cooccurrence")
        sim = self.similar_items(item_id, k)
        have = {x for x, _ in items}
        floor = items[-1][1] if items else 0.0
        extra = [(x, s) for x, s in sim.items if x not in have][: k - len(items)]
        if not items:
            return Recommendations(extra, sim.strategy)
        # Keep co-occurrence items first whatever the similarity scale.
        extra = [(x, floor * 0.5 ** (n + 1)) for n, (x, _) in enumerate(extra)]
        return Recommendations(items + extra, f"cooccurrence+{sim.strategy}")

    def buy_again(self, user_id: str, k: int = 20) -> Recommendations:
        """The shopper's repeat items (purchases, or any events in stores without purchases),
        most frequent and most due first; empty for unknown shoppers (``"buy_again"``).
        """
        u = self.user_index.get(str(user_id))
        if u is None:
            return Recommendations([], "buy_again")
        t = self.table
        lo, hi = t.indptr[u], t.indptr[u + 1]
        score = t.data["buy_again"][lo:hi]
        last = t.data["last_ts"][lo:hi]
        order = np.lexsort((-last, -score))
        order = order[score[order] > 0][:k]
        ids = self.item_index.ids
        return Recommendations(
            [(str(ids[t.indices[lo + j]]), float(score[j])) for j in order], "buy_again"
        )

    def segment_of(self, user_id: str) -> int | None:
        """K-Means segment of a known shopper, None for unknown shoppers or no segments."""
        u = self.user_index.get(str(user_id))
        if u is None:
            return None
        s = int(self.arrays["user_segment"][u])
        return s if s >= 0 else None

    def segment_items(self, segment: int, k: int = 100) -> list[str]:
        """The segment's favourite items (by number of segment shoppers)."""
        seg = self.arrays["segment_items"]
        if not 0 <= segment < len(seg):
            return []
        ids = self.item_index.ids
        return [str(ids[i]) for i in seg[segment][:k].tolist() if i >= 0]

    def seen_items(self, user_id: str) -> list[str]:
        """Items the shopper interacted with in training, most recent first."""
        u = self.user_index.get(str(user_id))
        if u is None:
            return []
        t = self.table
        lo, hi = t.indptr[u], t.indptr[u + 1]
        order = np.argsort(-t.data["last_ts"][lo:hi], kind="stable")
        ids = self.item_index.ids
        return [str(ids[t.indices[lo + j]]) for j in order]

    def explain(self, user_id: str, item_id: str) -> dict[str, object]:
        """Feature values behind ranking ``item_id`` for ``user_id`` (for "why this?").

        Returns ``{"strategy", "features": {name: value or None}, "categories"}``; features are
        empty for unknown shoppers or items.
        """
        u = self.user_index.get(str(user_id))
        i = self.item_index.get(str(item_id))
        result: dict[str, object] = {
            "strategy": self.strategy_for(user_id),
            "features": {},
            "categories": self.categories_of(item_id),
        }
        if u is None or i is None or not self.has_als:
            return result
        uu = np.array([u])
        als_ids, _ = als_topk(
            self.arrays["user_factors"][uu],
            self.arrays["item_factors"],
            self.serving.als_candidates,
        )
        pos = np.flatnonzero(als_ids[0] == i)
        rank = np.array([[pos[0] + 1 if len(pos) else self.serving.als_candidates + 1]])
        x = self.features(uu, np.array([[i]]), rank)[0]
        result["features"] = {
            name: (None if np.isnan(v) else round(float(v), 6))
            for name, v in zip(FEATURE_NAMES, x, strict=True)
        }
        return result
