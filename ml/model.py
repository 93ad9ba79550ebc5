"""The trained recommender artifact: fitting, serving, explaining, saving and loading.

A :class:`RecommenderModel` holds only numpy arrays, JSON-able metadata and (optionally) a
LightGBM booster, so it persists as ``arrays.npz`` + ``manifest.json`` + ``ranker.txt`` without
pickle. Serving is batched and vectorised: candidates from several generators are merged into a
fixed-width matrix per batch of shoppers, featurised with numpy gathers and re-ranked by
LightGBM in one call.

Strategies (``model.strategy``): ``"popularity"``, ``"als"`` (ALS scores only) and
``"als+rerank"`` (merged candidates re-ranked by LightGBM). Cold shoppers get ``"trending"`` (or
``"session"`` item-to-item when recent items are given).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp

from ml.candidates.als import (
    AlsParams,
    als_topk,
    fit_als,
    item_neighbors,
    normalized,
    single_threaded_blas,
)
from ml.candidates.buy_again import buy_again_scores, cell_intervals, item_intervals
from ml.candidates.content import content_embeddings, item_texts
from ml.candidates.cooccurrence import cooccurrence_matrix, session_ids
from ml.candidates.popularity import TimeBins, popularity_scores, trending_scores
from ml.candidates.segments import fit_segments
from ml.data import (
    DAY,
    Catalog,
    EventWeights,
    IdIndex,
    Interactions,
    UserItemTable,
    build_index,
    build_user_item_table,
    event_weights_array,
)
from ml.sparse_utils import csr_gather, csr_positions, dedup_rows, seen_mask, take_at, topk_rows

FORMAT_VERSION = 1
STRATEGIES = ("popularity", "als", "als+rerank")
N_RECENT = 5  # recent items kept per shopper for similarity features and session candidates
MAX_CATS = 3  # categories per item used by category-affinity features
NEIGHBORS = 20
MAX_NEIGHBOR_ITEMS = 50_000  # neighbour tables are O(n^2 d): only the most popular items get one

FEATURE_NAMES = (
    "als_score",
    "als_rank",
    "als_gap",
    "pop_log",
    "trend_share",
    "pop_user_time_7d",
    "pop_user_time_30d",
    "item_age_at_user_days",
    "item_age_days",
    "sim_recent_max",
    "sim_recent_mean",
    "sim_last",
    "content_sim_max",
    "content_sim_mean",
    "cooc_recent",
    "ui_count",
    "ui_repeat",
    "ui_days_since_last",
    "ui_days_since_repeat",
    "item_interval_days",
    "ui_due_ratio",
    "buy_again",
    "cat_share",
    "cat_lift",
    "price_ratio_log",
    "user_events_log",
    "user_span_days",
    "user_idle_days",
    "user_items_log",
    "user_repeat_rate",
    "item_repeat_rate",
    "is_seen",
    "in_trending",
)


@dataclass
class Recommendations:
    """A ranked list of ``(item_id, score)`` plus the strategy that produced it.

    Behaves like the list of items for iteration, ``len`` and indexing, so callers that only
    need the items can ignore ``strategy``.
    """

    items: list[tuple[str, float]]
    strategy: str

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[str, float]:
        return self.items[i]

    @property
    def item_ids(self) -> list[str]:
        return [item for item, _ in self.items]


@dataclass
class ServingConfig:
    """Candidate budget for re-ranking (also used when training the ranker)."""

    als_candidates: int = 30
    trending_candidates: int = 10
    user_time_candidates: int = 10
    session_items: int = 3
    neighbor_candidates: int = 5
    seen_candidates: int = 20
    rerank_candidates: int = 60
    batch_cells: int = 40_000  # (shoppers x candidates) per vectorised batch
    threads: int = 2

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> ServingConfig:
        return cls(**{k: int(v) for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class RecommenderModel:
    """Trained artifact. Build it with :func:`fit_model`; restore it with :meth:`load`."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, object]
    booster: lgb.Booster | None = None
    serving: ServingConfig = field(default_factory=ServingConfig)

    def __post_init__(self) -> None:
        a = self.arrays
        self.user_index = IdIndex(a["user_ids"])
        self.item_index = IdIndex(a["item_ids"])
        self.table = UserItemTable(
            indptr=a["ui_indptr"],
            indices=a["ui_indices"],
            data={
                k[3:]: v
                for k, v in a.items()
                if k.startswith("ui_") and k[3:] not in ("indptr", "indices")
            },
            shape=(len(self.user_index), len(self.item_index)),
        )
        self._seen_csr = sp.csr_matrix(
            (np.ones(self.table.nnz, np.float32), self.table.indices, self.table.indptr),
            shape=self.table.shape,
        )
        self.bins = TimeBins(
            origin=int(self.meta["bins_origin"]),
            width=int(self.meta["bins_width"]),
            cum=a["bins_cum"],
            total=a["bins_total"],
        )
        self.has_als = a["item_factors"].size > 0
        self.item_unit = normalized(a["item_factors"]) if self.has_als else None
        self.has_content = a["content"].size > 0
        self.cooc = sp.csr_matrix(
            (a["cooc_data"], a["cooc_indices"], a["cooc_indptr"]),
            shape=(len(self.item_index), len(self.item_index)),
        )
        self._item_objects = np.empty(len(self.item_index), dtype=object)
        self._item_objects[:] = self.item_index.ids.tolist()  # str objects, built once
        self._pop_order = np.lexsort((np.arange(len(a["popularity"])), -a["popularity"]))
        self._trend_order = np.lexsort((np.arange(len(a["trending"])), -a["trending"]))
        self._trend_rank = np.empty(len(self._trend_order), np.int64)
        self._trend_rank[self._trend_order] = np.arange(len(self._trend_order))
        categories = a["categories"].tolist()
        self._item_cats = a["item_cats"]
        self._category_names = categories

    # ------------------------------------------------------------------ properties
    @property
    def strategy(self) -> str:
        return str(self.meta["strategy"])

    @property
    def reference_ts(self) -> int:
        return int(self.meta["reference_ts"])

    @property
    def n_users(self) -> int:
        return len(self.user_index)

    @property
    def n_items(self) -> int:
        return len(self.item_index)

    @property
    def repeat_store(self) -> bool:
        """True when shoppers often come back to items they already had: callers should then
        serve with ``exclude_seen=False``.
        """
        return bool(self.meta.get("repeat_store", False))

    @property
    def item_categories(self) -> dict[str, list[str]]:
        """item_id -> category names (as given in the catalog), for explanations."""
        names = self._category_names
        out = {}
        for pos, item in enumerate(self.item_index.ids.tolist()):
            cats = [names[c] for c in self._item_cats[pos] if c >= 0]
            out[item] = cats
        return out

    def categories_of(self, item_id: str) -> list[str]:
        """Category names of one item ([] for unknown items)."""
        i = self.item_index.get(str(item_id))
        if i is None:
            return []
        return [self._category_names[c] for c in self._item_cats[i] if c >= 0]

    def with_strategy(self, strategy: str) -> RecommenderModel:
        """Same arrays, different serving strategy (shares memory; no copy)."""
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}")
        if strategy != "popularity" and not self.has_als:
            raise ValueError("this model has no ALS factors")
        if strategy == "als+rerank" and self.booster is None:
            raise ValueError("this model has no ranker")
        clone = RecommenderModel.__new__(RecommenderModel)
        clone.__dict__.update(self.__dict__)
        clone.meta = {**self.meta, "strategy": strategy}
        return clone

    # ------------------------------------------------------------------ batch serving
    def recommend_for_users(
        self, user_ids: Sequence[str], k: int = 100, exclude_seen: bool = True
    ) -> list[list[tuple[str, float]]]:
        """Top ``k`` ``(item_id, score)`` per shopper, in input order, best first.

        Known shoppers get the model's strategy; unknown ones the trending list. With
        ``exclude_seen`` nothing the shopper interacted with in training is returned. Lists may
        be shorter than ``k`` only when the catalog is. Scores are comparable within a list only.
        """
        uidx = self.user_index.lookup(user_ids)
        out: list[list[tuple[str, float]]] = [[] for _ in range(len(uidx))]
        ids = self._item_objects
        # Batches are turned into Python lists (GIL-bound) while the worker threads already
        # score the next ones (mostly GIL-free numpy/BLAS/LightGBM).
        for rows, items, scores in self._iter_ranked(uidx, k, exclude_seen):
            names = ids[np.maximum(items, 0)]
            for r, row_names, row_scores, row_items in zip(
                rows.tolist(), names.tolist(), scores.tolist(), items.tolist(), strict=True
            ):
                pairs = list(zip(row_names, row_scores, strict=True))
                if row_items and row_items[-1] < 0:  # -1 padding only ever sits at the end
                    pairs = pairs[: sum(1 for i in row_items if i >= 0)]
                out[r] = pairs
        return out

    def strategy_for(self, user_id: str) -> str:
        """Strategy :meth:`recommend_for_users` uses for this shopper."""
        return self.strategy if self.user_index.get(str(user_id)) is not None else "trending"

    def recommend_indices(
        self, uidx: np.ndarray, k: int, *, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Index-level batch recommendation: (len(uidx), k) item indices (-1 padded), scores.

        ``uidx`` entries < 0 are cold shoppers (trending).
        """
        uidx = np.asarray(uidx, dtype=np.int64)
        k = max(0, min(int(k), self.n_items))
        items = np.full((len(uidx), k), -1, dtype=np.int64)
        scores = np.full((len(uidx), k), -np.inf)
        for rows, got_items, got_scores in self._iter_ranked(uidx, k, exclude_seen):
            items[rows], scores[rows] = got_items, got_scores
        return items, scores

    def _iter_ranked(
        self, uidx: np.ndarray, k: int, exclude_seen: bool
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(rows, items, scores)`` per batch of ``uidx`` positions, covering every row once:
        cold shoppers in one block, known ones in vectorised batches, ranked by up to
        ``serving.threads`` workers while the caller consumes earlier batches.
        """
        uidx = np.asarray(uidx, dtype=np.int64)
        k = max(0, min(int(k), self.n_items))
        if len(uidx) == 0:
            return
        if k == 0:
            yield np.arange(len(uidx)), np.zeros((len(uidx), 0), np.int64), np.zeros((len(uidx), 0))
            return
        cold = np.flatnonzero(uidx < 0)
        if len(cold):
            top = self._trend_order[:k]
            yield (
                cold,
                np.broadcast_to(top, (len(cold), len(top))),
                np.broadcast_to(self.arrays["trending"][top], (len(cold), len(top))),
            )
        known = np.flatnonzero(uidx >= 0)
        width = max(k, self.serving.rerank_candidates)
        batch = max(1, self.serving.batch_cells // width)
        chunks = [known[s : s + batch] for s in range(0, len(known), batch)]

        def run(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            got_items, got_scores = self._rank_known(uidx[rows], k, exclude_seen)
            return rows, got_items, got_scores

        if self.serving.threads > 1 and len(chunks) > 1:
            # numpy, BLAS and LightGBM release the GIL in their kernels, so batches in flight
            # use every core; each LightGBM call and each BLAS product then runs
            # single-threaded (more would only oversubscribe the cores).
            with (
                single_threaded_blas(),
                ThreadPoolExecutor(max_workers=self.serving.threads) as pool,
            ):
                yield from pool.map(run, chunks)
        else:
            for rows in chunks:
                yield run(rows)

    def _rank_known(
        self, u: np.ndarray, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        strategy = self.strategy
        if strategy == "popularity" or not self.has_als:
            items, scores = self._ranked_global(
                self.arrays["popularity"], self._pop_order, u, k, exclude_seen
            )
        elif strategy == "als" or self.booster is None:
            items, scores = als_topk(
                self.arrays["user_factors"][u],
                self.arrays["item_factors"],
                k,
                self._seen_csr[u] if exclude_seen else None,
            )
        else:
            items, scores = self._rerank(u, k, exclude_seen)
        return self._pad(u, items, scores, k, exclude_seen)

    def _ranked_global(
        self, score: np.ndarray, order: np.ndarray, u: np.ndarray, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Same global ranking for everyone, minus each shopper's seen items."""
        if not exclude_seen:
            top = order[:k]
            return np.broadcast_to(top, (len(u), len(top))).copy(), np.broadcast_to(
                score[top], (len(u), len(top))
            ).astype(np.float64)
        max_seen = int(np.diff(self.table.indptr)[u].max(initial=0))
        head = order[: min(len(order), k + max_seen)]
        cand = np.broadcast_to(head, (len(u), len(head))).copy()
        cand[seen_mask(self.table.indptr, self.table.indices, self.n_items, u, cand)] = -1
        keep = np.argsort(cand < 0, axis=1, kind="stable")[:, :k]
        items = np.take_along_axis(cand, keep, axis=1)
        scores = np.where(items >= 0, score[np.maximum(items, 0)], -np.inf)
        return items, scores

    def _pad(
        self, u: np.ndarray, items: np.ndarray, scores: np.ndarray, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fill -1 slots with popular items not yet in the row (and unseen if required), scored
        just below the row's last real score so the order stays meaningful.
        """
        if items.shape[1] < k:
            items = np.pad(items, ((0, 0), (0, k - items.shape[1])), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, k - scores.shape[1])), constant_values=-np.inf)
        missing = items < 0
        if not missing.any():
            return items, scores
        rows = np.flatnonzero(missing.any(axis=1))
        fill, _ = self._ranked_global(
            self.arrays["popularity"], self._pop_order, u[rows], k + items.shape[1], exclude_seen
        )
        for r, fill_row in zip(rows.tolist(), fill.tolist(), strict=True):
            present = set(items[r][items[r] >= 0].tolist())
            extra = [i for i in fill_row if i >= 0 and i not in present]
            slots = np.flatnonzero(items[r] < 0)
            n = min(len(slots), len(extra))
            finite = scores[r][np.isfinite(scores[r])]
            floor = float(finite.min()) if len(finite) else 0.0
            items[r, slots[:n]] = extra[:n]
            scores[r, slots[:n]] = floor - 1.0 - np.arange(n) * 1e-3
        return items, scores

    # ------------------------------------------------------------------ candidates & features
    def _rerank(self, u: np.ndarray, k: int, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        """Re-rank the candidate pool; beyond the pool, continue in ALS order (scored below)."""
        s = self.serving
        seen = self._seen_csr[u] if exclude_seen else None
        n_als = min(max(k, s.als_candidates), self.n_items)
        als_ids, _ = als_topk(
            self.arrays["user_factors"][u], self.arrays["item_factors"], n_als, seen
        )
        cands, als_rank = self.candidates(u, exclude_seen, als_ids=als_ids)
        valid = cands >= 0
        x = self.features(u, cands, als_rank)
        pred = np.full(cands.shape, -np.inf)
        if valid.any():
            pred[valid] = self.booster.predict(x[valid.ravel()], num_threads=1)
        order = np.argsort(-pred, axis=1, kind="stable")
        pool = np.take_along_axis(cands, order, axis=1)
        pool_scores = np.take_along_axis(pred, order, axis=1)
        pool[~np.isfinite(pool_scores)] = -1
        if pool.shape[1] >= k or als_ids.shape[1] <= s.als_candidates:
            return pool[:, :k], pool_scores[:, :k]
        # Tail: ALS items not in the pool, in ALS order, below every pooled score.
        tail = als_ids[:, s.als_candidates :].copy()
        in_pool = (tail[:, :, None] == cands[:, None, :]).any(axis=2)
        tail[in_pool] = -1
        tail = np.take_along_axis(tail, np.argsort(tail < 0, axis=1, kind="stable"), axis=1)
        floor = np.where(np.isfinite(pool_scores), pool_scores, np.inf).min(axis=1, keepdims=True)
        floor = np.where(np.isfinite(floor), floor, 0.0)
        tail_scores = floor - 1.0 - np.arange(tail.shape[1]) * 1e-3
        tail_scores = np.where(tail >= 0, tail_scores, -np.inf)
        items = np.concatenate([pool, tail], axis=1)
        scores = np.concatenate([pool_scores, tail_scores], axis=1)
        keep = np.argsort(items < 0, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(items, keep, axis=1), np.take_along_axis(scores, keep, axis=1)

    def candidates(
        self, u: np.ndarray, exclude_seen: bool, *, als_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Merged candidate matrix (len(u), W) of item indices (-1 padded) and ALS rank per slot.

        Sources in priority order: ALS top N, the shopper's repeat items (when seen items are
        allowed), neighbours and bought-together items of the shopper's recent items, items
        popular around the shopper's last activity, trending now. Duplicates keep their first
        (highest priority) slot; rows are truncated to ``rerank_candidates``.
        ALS rank is 1-based, ``als_candidates + 1`` outside the ALS list.
        """
        s = self.serving
        a = self.arrays
        n_als = min(s.als_candidates, self.n_items)
        if als_ids is None:
            seen = self._seen_csr[u] if exclude_seen else None
            als_ids, _ = als_topk(a["user_factors"][u], a["item_factors"], n_als, seen)
        parts = [als_ids[:, :n_als]]
        if not exclude_seen and s.seen_candidates > 0:
            parts.append(self._top_seen(u, s.seen_candidates))
        recent = a["recent"][u][:, : s.session_items]
        for table in ("nbr_ids", "cooc_top"):
            nb = a[table]
            if nb.shape[1] == 0:
                continue
            got = nb[np.maximum(recent, 0)][:, :, : s.neighbor_candidates]
            got = np.where(recent[:, :, None] >= 0, got, -1)
            parts.append(got.reshape(len(u), -1))
        bin_top = a["bin_top"]
        if bin_top.shape[1]:
            b = self.bins.bin_end(a["user_last_ts"][u])
            parts.append(bin_top[b][:, : s.user_time_candidates])
        trend = self._trend_order[: s.trending_candidates]
        parts.append(np.broadcast_to(trend, (len(u), len(trend))))
        cands = np.concatenate([p.astype(np.int64) for p in parts], axis=1)
        als_rank = np.full(cands.shape, n_als + 1, dtype=np.int64)
        als_rank[:, :n_als] = np.arange(1, n_als + 1)
        cands = dedup_rows(cands)
        if exclude_seen:
            cands[seen_mask(self.table.indptr, self.table.indices, self.n_items, u, cands)] = -1
        # Compact valid slots to the left (stable: keeps priority order), then truncate.
        keep = np.argsort(cands < 0, axis=1, kind="stable")
        width = min(cands.shape[1], s.rerank_candidates)
        keep = keep[:, :width]
        return np.take_along_axis(cands, keep, axis=1), np.take_along_axis(als_rank, keep, axis=1)

    def _top_seen(self, u: np.ndarray, n: int) -> np.ndarray:
        """Each shopper's ``n`` seen items with the highest buy-again score, then most recent."""
        t = self.table
        out = np.full((len(u), n), -1, dtype=np.int64)
        starts, ends = t.indptr[u], t.indptr[u + 1]
        lens = ends - starts
        if lens.sum() == 0:
            return out
        local = np.repeat(np.arange(len(u)), lens)
        src = np.repeat(starts, lens) + (
            np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        )
        score = t.data["buy_again"][src]
        last = t.data["last_ts"][src]
        order = np.lexsort((-last, -score, local))
        local_s = local[order]
        rank = np.arange(len(order)) - (np.cumsum(lens) - lens)[local_s]
        take = rank < n
        out[local_s[take], rank[take]] = t.indices[src[order][take]]
        return out

    def buy_again_indices(self, uidx: np.ndarray, k: int) -> np.ndarray:
        """(len(uidx), k) pure buy-again lists (item indices, -1 padded) for known shoppers."""
        u = np.asarray(uidx, dtype=np.int64)
        top = self._top_seen(u, k)
        rows = np.broadcast_to(u[:, None], top.shape)
        t = self.table
        score = csr_gather(
            t.indptr, t.indices, t.data["buy_again"], self.n_items, rows.ravel(), top.ravel()
        ).reshape(top.shape)
        top[score <= 0] = -1
        return top

    def features(self, u: np.ndarray, cands: np.ndarray, als_rank: np.ndarray) -> np.ndarray:
        """Feature matrix (len(u) * W, len(FEATURE_NAMES)) float32 for a candidate matrix.

        Rows for -1 slots are filled but meaningless; callers mask them. Missing values are NaN
        (LightGBM routes them explicitly).
        """
        a = self.arrays
        b, w = cands.shape
        valid = cands >= 0
        c = np.maximum(cands, 0)
        ref = self.reference_ts
        f = np.full((b, w, len(FEATURE_NAMES)), np.nan, dtype=np.float32)
        col = {name: j for j, name in enumerate(FEATURE_NAMES)}

        def put(name: str, value: np.ndarray) -> None:
            f[:, :, col[name]] = value

        uf = a["user_factors"][u]
        vf = a["item_factors"][c]
        als = np.matmul(vf, uf[:, :, None])[:, :, 0]
        put("als_score", als)
        put("als_rank", als_rank)
        top = np.where(als_rank == 1, als, -np.inf).max(axis=1, keepdims=True)
        top = np.where(np.isfinite(top), top, als.max(axis=1, keepdims=True))
        put("als_gap", top - als)
        put("pop_log", np.log1p(a["n_users_item"][c]))
        trend = a["trending"]
        put("trend_share", trend[c] / max(float(trend.sum()), 1e-9))
        t_u = a["user_last_ts"][u][:, None]
        put("pop_user_time_7d", self.bins.window_share(c, t_u, 7))
        put("pop_user_time_30d", self.bins.window_share(c, t_u, 30))
        first = a["item_first_ts"][c]
        put("item_age_at_user_days", (t_u - first) / DAY)
        put("item_age_days", (ref - first) / DAY)

        recent = a["recent"][u]  # (b, R)
        rmask = recent >= 0
        n_recent = np.maximum(rmask.sum(axis=1), 1)[:, None]
        if self.item_unit is not None:
            sims = _recent_similarity(self.item_unit, c, recent)
            self._put_similarity(f, col, "sim", sims, rmask, n_recent)
            put("sim_last", np.where(rmask[:, :1], sims[:, 0, :], np.nan))
        if self.has_content:
            cs = _recent_similarity(a["content"], c, recent)
            self._put_similarity(f, col, "content_sim", cs, rmask, n_recent)
        if self.cooc.nnz:
            # Sum of bought-together scores from the last few items: one sparse product per
            # batch, then a single gather.
            r3 = recent[:, : self.serving.session_items]
            rr, cc = np.nonzero(r3 >= 0)
            sel = sp.csr_matrix((np.ones(len(rr)), (rr, r3[rr, cc])), shape=(b, self.n_items))
            co = (sel @ self.cooc).tocsr()
            co.sort_indices()
            local = np.broadcast_to(np.arange(b)[:, None], (b, w)).ravel()
            put(
                "cooc_recent",
                csr_gather(
                    co.indptr, co.indices, co.data, self.n_items, local, cands.ravel()
                ).reshape(b, w),
            )

        rows = np.broadcast_to(u[:, None], (b, w)).ravel()
        cols = cands.ravel()
        t = self.table

        cell_pos = csr_positions(t.indptr, t.indices, self.n_items, rows, cols)

        def cell(name: str, default: float = 0.0) -> np.ndarray:
            return take_at(t.data[name], cell_pos, default).reshape(b, w)

        count = cell("count")
        put("ui_count", count)
        put("ui_repeat", cell("repeat_count"))
        last = cell("last_ts", np.nan)
        put("ui_days_since_last", (ref - last) / DAY)
        last_rep = cell("last_repeat_ts", np.nan)
        last_rep = np.where(last_rep > 0, last_rep, np.nan)
        days_rep = (ref - last_rep) / DAY
        put("ui_days_since_repeat", days_rep)
        item_iv = a["item_interval"][c]
        put("item_interval_days", item_iv)
        own_iv = cell("interval", np.nan)
        expected = np.where(np.isnan(own_iv), item_iv, own_iv)
        with np.errstate(invalid="ignore", divide="ignore"):
            put("ui_due_ratio", days_rep / np.maximum(expected, 1.0))
        put("buy_again", cell("buy_again"))
        put("is_seen", (count > 0).astype(np.float32))

        cats = self._item_cats[c]  # (b, w, MAX_CATS)
        if cats.shape[-1] and (cats >= 0).any():
            n_cats = len(self._category_names)
            user_cat = sp.csr_matrix(
                (a["user_cat_data"], a["user_cat_indices"], a["user_cat_indptr"]),
                shape=(self.n_users, n_cats),
            )[u]
            has = cats >= 0
            safe = np.maximum(cats, 0)
            if n_cats <= 4096:
                dense = user_cat.toarray()
                share = np.take_along_axis(dense, safe.reshape(b, -1), axis=1).reshape(cats.shape)
            else:
                local = np.broadcast_to(np.arange(b)[:, None, None], cats.shape).ravel()
                share = csr_gather(
                    user_cat.indptr, user_cat.indices, user_cat.data, n_cats, local, cats.ravel()
                ).reshape(cats.shape)
            share = np.where(has, share, -1.0)
            put("cat_share", _max_last(share))
            lift = np.where(has, share / np.maximum(a["cat_share"][safe], 1e-9), -1.0)
            put("cat_lift", _max_last(lift))
        price = a["item_price"][c]
        uprice = a["user_price"][u][:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            put(
                "price_ratio_log",
                np.log(np.where(price > 0, price, np.nan) / np.where(uprice > 0, uprice, np.nan)),
            )
        put("user_events_log", np.log1p(a["user_n_events"][u])[:, None])
        put("user_span_days", ((a["user_last_ts"][u] - a["user_first_ts"][u]) / DAY)[:, None])
        put("user_idle_days", ((ref - a["user_last_ts"][u]) / DAY)[:, None])
        put("user_items_log", np.log1p(a["user_n_items"][u])[:, None])
        put("user_repeat_rate", a["user_repeat_rate"][u][:, None])
        put("item_repeat_rate", a["item_repeat_rate"][c])
        put(
            "in_trending",
            (self._trend_rank[c] < self.serving.trending_candidates).astype(np.float32),
        )
        f[~valid] = np.nan
        return f.reshape(b * w, len(FEATURE_NAMES))

    @staticmethod
    def _put_similarity(
        f: np.ndarray,
        col: dict[str, int],
        prefix: str,
        sims: np.ndarray,
        rmask: np.ndarray,
        n_recent: np.ndarray,
    ) -> None:
        """Max and mean similarity to the shopper's recent items (NaN without any).

        ``sims`` is (b, R, w): reducing over the middle axis runs vector-wide over w.
        """
        m = rmask[:, :, None]
        best = np.where(m, sims, -np.inf).max(axis=1)
        f[:, :, col[prefix + "_recent_max" if prefix == "sim" else prefix + "_max"]] = np.where(
            np.isfinite(best), best, np.nan
        )
        mean = np.where(m, sims, 0.0).sum(axis=1) / n_recent
        f[:, :, col[prefix + "_recent_mean" if prefix == "sim" else prefix + "_mean"]] = np.where(
            rmask.any(axis=1)[:, None], mean, np.nan
        )

    # ------------------------------------------------------------------ single-shopper APIs
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
            items = self.recommend_for_users([str(user_id)], k=k, exclude_seen=exclude_seen)[0]
            return Recommendations(items, self.strategy)
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

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        """Write ``manifest.json``, ``arrays.npz`` and, with a ranker, ``ranker.txt`` into
        ``directory`` (created if needed; existing files of those names are replaced).
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.savez(d / "arrays.npz", **self.arrays)
        if self.booster is not None:
            self.booster.save_model(str(d / "ranker.txt"))
        manifest = {
            "format_version": FORMAT_VERSION,
            "meta": self.meta,
            "serving": self.serving.to_dict(),
            "has_ranker": self.booster is not None,
            "feature_names": list(FEATURE_NAMES),
        }
        (d / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))

    @classmethod
    def load(cls, directory: str | Path) -> RecommenderModel:
        """Restore a model written by :meth:`save`. Raises ``ValueError`` on an unknown format
        version or feature list (retrain instead of serving garbage).
        """
        d = Path(directory)
        manifest = json.loads((d / "manifest.json").read_text())
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported model format {manifest.get('format_version')!r}")
        if manifest.get("has_ranker") and manifest.get("feature_names") != list(FEATURE_NAMES):
            raise ValueError("model was trained with a different feature set; retrain it")
        with np.load(d / "arrays.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        booster = lgb.Booster(model_file=str(d / "ranker.txt")) if manifest["has_ranker"] else None
        return cls(
            arrays=arrays,
            meta=manifest["meta"],
            booster=booster,
            serving=ServingConfig.from_dict(manifest["serving"]),
        )


# ---------------------------------------------------------------------- fitting
@dataclass
class FitOptions:
    """Everything :func:`fit_model` needs besides data."""

    als: AlsParams | None = field(default_factory=AlsParams)
    weights: EventWeights = field(default_factory=EventWeights)
    half_life_days: float | None = None
    trending_half_life_days: float = 7.0
    cooccurrence_measure: str = "jaccard"
    cooccurrence_min_support: int = 2
    content_dim: int = 64
    random_state: int = 0
    num_threads: int = 0


def fit_model(
    interactions: Interactions,
    catalog: Catalog | None,
    options: FitOptions,
    *,
    reference_ts: int | None = None,
    precomputed_factors: tuple[np.ndarray, np.ndarray] | None = None,
    timings: dict[str, float] | None = None,
) -> RecommenderModel:
    """Fit every candidate generator and the serving arrays on ``interactions``.

    Strategy is ``"als"`` when ALS was fitted (``options.als`` not None and there are events),
    ``"popularity"`` otherwise; attach a ranker with :func:`attach_ranker`. ``reference_ts``
    ("now" for recency features; default: the latest event) must not precede the data.
    ``precomputed_factors`` (user, item) skips the ALS fit when they were fitted on exactly
    this data and index (the search already did). ``timings`` receives seconds per step.
    """
    timings = timings if timings is not None else {}
    t0 = time.perf_counter()
    catalog = catalog if catalog is not None else Catalog.empty()
    user_index, item_index = build_index(interactions, catalog)
    n_users, n_items = len(user_index), len(item_index)
    ts = interactions.timestamps
    ref = int(reference_ts if reference_ts is not None else ts.max(initial=0))
    is_purchase = interactions.type_mask("purchase")
    has_purchases = bool(is_purchase.any())
    repeat_event = "purchase" if has_purchases else None
    table = build_user_item_table(
        interactions,
        user_index,
        item_index,
        options.weights,
        reference_ts=ref,
        half_life_days=options.half_life_days,
        repeat_event=repeat_event,
    )
    u_ev = user_index.lookup_column(interactions, "user_ids")
    i_ev = item_index.lookup_column(interactions, "item_ids")
    w_ev = event_weights_array(interactions, options.weights)

    a: dict[str, np.ndarray] = {"user_ids": user_index.ids, "item_ids": item_index.ids}
    a["ui_indptr"], a["ui_indices"] = table.indptr, table.indices
    table.data["interval"] = cell_intervals(table)
    item_iv = item_intervals(table, n_items)
    table.data["buy_again"] = buy_again_scores(table, item_iv, ref)
    for name, values in table.data.items():
        a["ui_" + name] = values
    a["item_interval"] = item_iv

    # Item statistics.
    a["popularity"] = popularity_scores(i_ev, u_ev, n_items)
    a["n_users_item"] = np.bincount(table.indices, minlength=n_items).astype(np.float64)
    a["trending"] = trending_scores(
        i_ev, ts, w_ev, n_items, reference_ts=ref, half_life_days=options.trending_half_life_days
    )
    first_seen = np.full(n_items, np.inf)
    np.minimum.at(first_seen, i_ev, ts.astype(np.float64))
    cat_pos = item_index.lookup(catalog.item_ids)
    created = np.full(n_items, np.inf)
    if len(catalog):
        c_created = catalog.created_at.astype(np.float64)
        created[cat_pos] = np.where(c_created > 0, c_created, np.inf)
    first = np.minimum(first_seen, created)
    a["item_first_ts"] = np.where(np.isfinite(first), first, float(ref))
    price = np.full(n_items, np.nan)
    if len(catalog):
        price[cat_pos] = catalog.prices
    a["item_price"] = price
    repeated_cells = (
        table.data["count"] >= 2 if repeat_event is None else table.data["repeat_count"] >= 2
    )
    rep_items = np.bincount(table.indices[repeated_cells], minlength=n_items)
    a["item_repeat_rate"] = rep_items / np.maximum(a["n_users_item"], 1.0)
    bins = TimeBins.build(i_ev, ts, n_items)
    a["bins_cum"], a["bins_total"] = bins.cum, bins.total
    a["bin_top"] = bins.top_items_per_bin(30, 20)
    timings["stats"] = time.perf_counter() - t0

    # Shopper statistics.
    rows = table.row_ids()
    n_ev = np.bincount(u_ev, minlength=n_users).astype(np.float64)
    a["user_n_events"] = n_ev
    a["user_n_items"] = np.diff(table.indptr).astype(np.float64)
    last_u = np.zeros(n_users)
    first_u = np.full(n_users, np.inf)
    np.maximum.at(last_u, u_ev, ts.astype(np.float64))
    np.minimum.at(first_u, u_ev, ts.astype(np.float64))
    a["user_last_ts"] = last_u
    a["user_first_ts"] = np.where(np.isfinite(first_u), first_u, 0.0)
    # Share of the shopper's events that went to an item they had touched before.
    a["user_repeat_rate"] = 1.0 - a["user_n_items"] / np.maximum(n_ev, 1.0)
    cell_price = price[table.indices]
    a["user_price"] = _row_nanmedian(rows, cell_price, n_users)
    a["recent"] = _recent_items(table, N_RECENT)

    # Categories.
    cat_names = sorted({c for cats in catalog.categories for c in cats})
    cat_of = {c: j for j, c in enumerate(cat_names)}
    item_cats = np.full((n_items, MAX_CATS), -1, dtype=np.int32)
    for pos, cats in zip(cat_pos.tolist(), catalog.categories, strict=True):
        uniq = list(dict.fromkeys(cats))[:MAX_CATS]
        item_cats[pos, : len(uniq)] = [cat_of[c] for c in uniq]
    a["categories"] = np.array(cat_names, dtype=str) if cat_names else np.zeros(0, dtype="<U1")
    a["item_cats"] = item_cats
    a.update(_category_affinity(table, item_cats, len(cat_names)))

    # Content.
    t1 = time.perf_counter()
    emb = None
    if len(catalog):
        titles = [""] * n_items
        descs = [""] * n_items
        cats_all: list[list[str]] = [[] for _ in range(n_items)]
        for pos, title, desc, cats in zip(
            cat_pos.tolist(), catalog.titles, catalog.descriptions, catalog.categories, strict=True
        ):
            titles[pos], descs[pos], cats_all[pos] = title, desc, list(cats)
        emb = content_embeddings(
            item_texts(titles, descs, cats_all),
            dim=options.content_dim,
            random_state=options.random_state,
        )
    a["content"] = emb if emb is not None else np.zeros((0, 0), np.float32)
    timings["content"] = time.perf_counter() - t1

    # Bought together: orders when the store has purchases, else any session.
    t1 = time.perf_counter()
    sel = is_purchase if has_purchases else np.ones(len(ts), bool)
    basket, order = session_ids(u_ev[sel], ts[sel])
    cooc = cooccurrence_matrix(
        basket,
        i_ev[sel][order],
        n_items,
        measure=options.cooccurrence_measure,
        min_support=options.cooccurrence_min_support,
    )
    a["cooc_indptr"], a["cooc_indices"], a["cooc_data"] = cooc.indptr, cooc.indices, cooc.data
    a["cooc_top"] = _csr_top(cooc, NEIGHBORS)
    timings["cooccurrence"] = time.perf_counter() - t1

    # ALS, neighbours, segments.
    t1 = time.perf_counter()
    fitted = options.als is not None and table.nnz > 0
    if fitted and precomputed_factors is not None:
        user_f, item_f = precomputed_factors
    elif fitted:
        user_f, item_f = fit_als(
            table.csr("weight"),
            options.als,
            random_state=options.random_state,
            num_threads=options.num_threads,
        )
    else:
        user_f = np.zeros((n_users, 0), np.float32)
        item_f = np.zeros((0, 0), np.float32)
    a["user_factors"], a["item_factors"] = user_f, item_f
    timings["als"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    if fitted:
        usable = a["n_users_item"] >= 1
        if usable.sum() > MAX_NEIGHBOR_ITEMS:
            usable &= a["popularity"] >= np.sort(a["popularity"])[-MAX_NEIGHBOR_ITEMS]
        nbr, _ = item_neighbors(normalized(item_f), NEIGHBORS, usable=usable)
        a["nbr_ids"] = nbr
        centers, assign, seg_items = fit_segments(
            normalized(user_f), table.csr("count"), random_state=options.random_state
        )
    else:
        a["nbr_ids"] = np.zeros((n_items, 0), np.int32)
        centers = np.zeros((0, 0), np.float32)
        assign = np.full(n_users, -1, np.int32)
        seg_items = np.zeros((0, 100), np.int32)
    a["segment_centers"], a["user_segment"], a["segment_items"] = centers, assign, seg_items
    timings["neighbors_segments"] = time.perf_counter() - t1

    meta = {
        "strategy": "als" if fitted else "popularity",
        "reference_ts": ref,
        "bins_origin": bins.origin,
        "bins_width": bins.width,
        "repeat_event": repeat_event,
        "als_params": options.als.to_dict() if options.als is not None else None,
        "weights": options.weights.to_dict(),
        "half_life_days": options.half_life_days,
        "repeat_store": False,
    }
    return RecommenderModel(arrays=a, meta=meta)


def attach_ranker(model: RecommenderModel, booster: lgb.Booster) -> RecommenderModel:
    """The model with ``booster`` as re-ranker and strategy ``"als+rerank"``."""
    model.booster = booster
    model.meta["strategy"] = "als+rerank"
    return model


def _recent_similarity(vectors: np.ndarray, cands: np.ndarray, recent: np.ndarray) -> np.ndarray:
    """(b, R, w) dot products of each shopper's R recent items with their w candidates.

    Computed as (w, d) @ (d, R) per shopper (the faster product, and the summation order the
    ranker was trained with), then laid out (b, R, w) for vector-wide reductions over R.
    """
    sims = np.matmul(vectors[cands], vectors[np.maximum(recent, 0)].transpose(0, 2, 1))
    return np.ascontiguousarray(sims.transpose(0, 2, 1))


def _max_last(x: np.ndarray) -> np.ndarray:
    """``x.max(axis=-1)`` for a short last axis, as element-wise maxima of its slices (numpy
    reduces a length-3 axis one output element at a time).
    """
    out = x[..., 0].copy()
    for j in range(1, x.shape[-1]):
        np.maximum(out, x[..., j], out=out)
    return out


def _row_nanmedian(rows: np.ndarray, values: np.ndarray, n_rows: int) -> np.ndarray:
    out = np.full(n_rows, np.nan)
    ok = ~np.isnan(values)
    if not ok.any():
        return out
    r, v = rows[ok], values[ok]
    order = np.lexsort((v, r))
    r, v = r[order], v[order]
    uniq, starts, counts = np.unique(r, return_index=True, return_counts=True)
    out[uniq] = (v[starts + (counts - 1) // 2] + v[starts + counts // 2]) / 2
    return out


def _recent_items(table: UserItemTable, n: int) -> np.ndarray:
    """(n_users, n) each shopper's most recently touched items, newest first, -1 padded."""
    rows = table.row_ids()
    out = np.full((table.shape[0], n), -1, dtype=np.int32)
    if table.nnz == 0:
        return out
    order = np.lexsort((-table.data["last_ts"], rows))
    r = rows[order]
    counts = np.diff(table.indptr)
    rank = np.arange(len(r)) - (np.cumsum(counts) - counts)[r]
    take = rank < n
    out[r[take], rank[take]] = table.indices[order][take]
    return out


def _csr_top(m: sp.csr_matrix, n: int) -> np.ndarray:
    """(rows, n) column indices of each row's largest values, -1 padded."""
    out = np.full((m.shape[0], n), -1, dtype=np.int32)
    if m.nnz == 0:
        return out
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, rows))
    r = rows[order]
    counts = np.diff(m.indptr)
    rank = np.arange(len(r)) - (np.cumsum(counts) - counts)[r]
    take = rank < n
    out[r[take], rank[take]] = m.indices[order][take]
    return out


def _category_affinity(
    table: UserItemTable, item_cats: np.ndarray, n_cats: int
) -> dict[str, np.ndarray]:
    """Per-shopper share of touched items in each category (CSR) and each category's global
    share, so features can say "likes this category" and "more than most shoppers do".
    """
    n_users, n_items = table.shape
    if n_cats == 0:
        empty = sp.csr_matrix((n_users, 0), dtype=np.float64)
        return {
            "user_cat_indptr": empty.indptr,
            "user_cat_indices": empty.indices,
            "user_cat_data": empty.data,
            "cat_share": np.zeros(0),
        }
    r, c = np.nonzero(item_cats >= 0)
    ic = sp.csr_matrix((np.ones(len(r)), (r, item_cats[r, c])), shape=(n_items, n_cats))
    binary = sp.csr_matrix(
        (np.ones(table.nnz), table.indices, table.indptr), shape=(n_users, n_items)
    )
    uc = (binary @ ic).tocsr()
    totals = np.asarray(uc.sum(axis=1)).ravel()
    glob = np.asarray(uc.sum(axis=0)).ravel()
    uc = sp.diags(1.0 / np.maximum(totals, 1.0)) @ uc
    uc = uc.tocsr()
    uc.sort_indices()
    return {
        "user_cat_indptr": uc.indptr.astype(np.int64),
        "user_cat_indices": uc.indices.astype(np.int32),
        "user_cat_data": uc.data.astype(np.float64),
        "cat_share": glob / max(glob.sum(), 1.0),
    }
