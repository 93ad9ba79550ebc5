"""Batch serving: ranked lists for many shoppers at once, vectorised in batches (ALS top-k,
merged candidates re-ranked by LightGBM, popularity padding)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from ml.candidates.als import als_topk, single_threaded_blas
from ml.data import UserItemTable
from ml.explain import (
    BOUGHT_TOGETHER,
    BUY_AGAIN,
    PERSONAL_TASTE,
    POPULAR,
    SIMILAR_TO,
    TRENDING,
    ListReasons,
    refine_personal,
)
from ml.model.features import candidate_features
from ml.model.state import ShopperState, stored_state
from ml.sparse_utils import csr_gather, dedup_rows, seen_mask


class BatchServing:
    """Mixin of :class:`~ml.model.artifact.RecommenderModel`: the batch serving methods."""

    def recommend_for_users(
        self, user_ids: Sequence[str], k: int = 100, exclude_seen: bool = True
    ) -> list[list[tuple[str, float]]]:
        """Top ``k`` ``(item_id, score)`` per shopper, in input order, best first.

        Known shoppers get the model's strategy; unknown ones the trending list. With
        ``exclude_seen`` nothing the shopper interacted with in training is returned. Lists may
        be shorter than ``k`` only when the catalog is. Scores are comparable within a list only.
        """
        return [items for items, _ in self._lists(user_ids, k, exclude_seen, explain=False)]

    def explained_lists(
        self, user_ids: Sequence[str], k: int = 100, exclude_seen: bool = True
    ) -> list[tuple[list[tuple[str, float]], list[list]]]:
        """:meth:`recommend_for_users`' lists, each with its items' reasons in the compact form
        of :meth:`~ml.explain.ListReasons.encoded` (cold shoppers: trending)."""
        return self._lists(user_ids, k, exclude_seen, explain=True)

    def _lists(
        self, user_ids: Sequence[str], k: int, exclude_seen: bool, explain: bool
    ) -> list[tuple[list[tuple[str, float]], list[list]]]:
        uidx = self.user_index.lookup(user_ids)
        out: list[tuple[list[tuple[str, float]], list[list]]] = [([], [])] * len(uidx)
        ids = self._item_objects
        # Batches are turned into Python lists (GIL-bound) while the worker threads already
        # score the next ones (mostly GIL-free numpy/BLAS/LightGBM).
        for rows, items, scores, reasons in self._iter_ranked(uidx, k, exclude_seen, None, explain):
            names = ids[np.maximum(items, 0)]
            for n, (r, row_names, row_scores, row_items) in enumerate(
                zip(rows.tolist(), names.tolist(), scores.tolist(), items.tolist(), strict=True)
            ):
                pairs = list(zip(row_names, row_scores, strict=True))
                if row_items and row_items[-1] < 0:  # -1 padding only ever sits at the end
                    pairs = pairs[: sum(1 for i in row_items if i >= 0)]
                why = reasons.encoded(n, row_items[: len(pairs)], ids) if reasons else []
                out[r] = (pairs, why)
        return out

    def strategy_for(self, user_id: str) -> str:
        """Strategy :meth:`recommend_for_users` uses for this shopper."""
        return self.strategy if self.user_index.get(str(user_id)) is not None else "trending"

    def recommend_indices(
        self,
        uidx: np.ndarray,
        k: int,
        *,
        exclude_seen: bool = True,
        as_of: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Index-level batch recommendation: (len(uidx), k) item indices (-1 padded), scores.

        ``uidx`` entries < 0 are cold shoppers (trending). ``as_of`` (unix seconds per entry,
        not before the shopper's training events) is when each list is asked for: the
        recency features are computed as of then (default: the model's reference time).
        """
        uidx = np.asarray(uidx, dtype=np.int64)
        k = max(0, min(int(k), self.n_items))
        items = np.full((len(uidx), k), -1, dtype=np.int64)
        scores = np.full((len(uidx), k), -np.inf)
        for rows, got_items, got_scores, _ in self._iter_ranked(uidx, k, exclude_seen, as_of):
            items[rows], scores[rows] = got_items, got_scores
        return items, scores

    def _iter_ranked(
        self,
        uidx: np.ndarray,
        k: int,
        exclude_seen: bool,
        as_of: np.ndarray | None = None,
        explain: bool = False,
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, ListReasons | None]]:
        """``(rows, items, scores, reasons)`` per batch of ``uidx`` positions, covering every
        row once: cold shoppers in one block, known ones in vectorised batches, ranked by up to
        ``serving.threads`` workers while the caller consumes earlier batches. ``reasons`` is
        None unless ``explain``.
        """
        uidx = np.asarray(uidx, dtype=np.int64)
        k = max(0, min(int(k), self.n_items))
        if len(uidx) == 0:
            return
        if k == 0:
            empty = np.zeros((len(uidx), 0), np.int64)
            yield np.arange(len(uidx)), empty, np.zeros((len(uidx), 0)), None
            return
        cold = np.flatnonzero(uidx < 0)
        if len(cold):
            top = self._trend_order[:k]
            shape = (len(cold), len(top))
            yield (
                cold,
                np.broadcast_to(top, shape),
                np.broadcast_to(self.arrays["trending"][top], shape),
                ListReasons.uniform(shape, TRENDING) if explain else None,
            )
        known = np.flatnonzero(uidx >= 0)
        width = max(k, self.pool_width(exclude_seen))
        batch = max(1, self.serving.batch_cells // width)
        chunks = [known[s : s + batch] for s in range(0, len(known), batch)]

        when = None if as_of is None else np.asarray(as_of, dtype=np.float64)

        def run(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, ListReasons | None]:
            ref = None if when is None else when[rows]
            state = stored_state(self, uidx[rows], ref)
            return rows, *self._rank_state(state, k, exclude_seen, explain)

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

    def _rank_state(
        self, state: ShopperState, k: int, exclude_seen: bool, explain: bool = False
    ) -> tuple[np.ndarray, np.ndarray, ListReasons | None]:
        """(len(state), k) item indices and scores for shoppers described by ``state``, and
        with ``explain`` why each item is there (else None)."""
        strategy = self.strategy
        seen = state.seen
        reasons = None
        if strategy == "popularity" or not self.has_als:
            items, scores = self._ranked_global(
                self.arrays["popularity"], self._pop_order, seen, k, exclude_seen
            )
            if explain:
                reasons = ListReasons.uniform(items.shape, POPULAR)
        elif strategy == "als" or self.booster is None:
            items, scores = als_topk(
                state.factors, self.arrays["item_factors"], k, seen if exclude_seen else None
            )
            if explain:
                reasons = ListReasons.uniform(items.shape, PERSONAL_TASTE)
        else:
            items, scores, reasons = self._rerank(state, k, exclude_seen)
        padded_items, scores = self._pad(seen, items, scores, k, exclude_seen)
        if not explain:
            return padded_items, scores, None
        width = reasons.kind.shape[1]
        if width < k:
            reasons = reasons.concat(ListReasons.uniform((len(items), k - width), POPULAR))
        # _pad fills -1 slots with popular items.
        reasons.kind[(np.pad(items, ((0, 0), (0, k - width)), constant_values=-1) < 0)] = POPULAR
        refine_personal(reasons, padded_items, state.recent, self.item_unit)
        self._buy_again_gaps(state, padded_items, reasons)
        return padded_items, scores, reasons

    def _buy_again_gaps(self, state: ShopperState, items: np.ndarray, reasons: ListReasons) -> None:
        """Fill ``gap_days`` of the buy-again items: the shopper's own repurchase interval."""
        again = reasons.kind == BUY_AGAIN
        if not again.any():
            return
        t = state.table
        rows = np.broadcast_to(state.rows[:, None], items.shape)
        gaps = csr_gather(
            t.indptr, t.indices, t.data["interval"], self.n_items, rows[again], items[again],
            default=np.nan,
        )  # fmt: skip
        reasons.gap_days[again] = gaps

    def _ranked_global(
        self, score: np.ndarray, order: np.ndarray, seen: sp.csr_matrix, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Same global ranking for everyone, minus each shopper's ``seen`` items (CSR rows)."""
        n = seen.shape[0]
        if not exclude_seen:
            top = order[:k]
            return np.broadcast_to(top, (n, len(top))).copy(), np.broadcast_to(
                score[top], (n, len(top))
            ).astype(np.float64)
        max_seen = int(np.diff(seen.indptr).max(initial=0))
        head = order[: min(len(order), k + max_seen)]
        cand = np.broadcast_to(head, (n, len(head))).copy()
        cand[seen_mask(seen.indptr, seen.indices, self.n_items, np.arange(n), cand)] = -1
        keep = np.argsort(cand < 0, axis=1, kind="stable")[:, :k]
        items = np.take_along_axis(cand, keep, axis=1)
        scores = np.where(items >= 0, score[np.maximum(items, 0)], -np.inf)
        return items, scores

    def _pad(
        self,
        seen: sp.csr_matrix,
        items: np.ndarray,
        scores: np.ndarray,
        k: int,
        exclude_seen: bool,
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
            self.arrays["popularity"], self._pop_order, seen[rows], k + items.shape[1], exclude_seen
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
    def _rerank(
        self, state: ShopperState, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray, ListReasons]:
        """Re-rank the candidate pool; beyond the pool, continue in ALS order (scored below).
        Each item's reason is its candidate source (before :func:`refine_personal`)."""
        s = self.serving
        seen = state.seen if exclude_seen else None
        n_als = min(max(k, s.als_candidates), self.n_items)
        als_ids, _ = als_topk(state.factors, self.arrays["item_factors"], n_als, seen)
        cands, als_rank, sources = self._candidate_pool(state, exclude_seen, als_ids)
        valid = cands >= 0
        x = self.features(state, cands, als_rank)
        pred = np.full(cands.shape, -np.inf)
        if valid.any():
            pred[valid] = self.booster.predict(x[valid.ravel()], num_threads=1)
        order = np.argsort(-pred, axis=1, kind="stable")
        pool = np.take_along_axis(cands, order, axis=1)
        pool_scores = np.take_along_axis(pred, order, axis=1)
        pool[~np.isfinite(pool_scores)] = -1
        sources = sources.take(order)
        if pool.shape[1] >= k or als_ids.shape[1] <= s.als_candidates:
            return pool[:, :k], pool_scores[:, :k], sources.head(k)
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
        sources = sources.concat(ListReasons.uniform(tail.shape, PERSONAL_TASTE))
        keep = np.argsort(items < 0, axis=1, kind="stable")[:, :k]
        return (
            np.take_along_axis(items, keep, axis=1),
            np.take_along_axis(scores, keep, axis=1),
            sources.take(keep),
        )

    def candidates(
        self,
        shoppers: np.ndarray | ShopperState,
        exclude_seen: bool,
        *,
        als_ids: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Merged candidate matrix (len(u), W) of item indices (-1 padded) and ALS rank per slot.

        Sources in priority order: ALS top N, the shopper's repeat items (when seen items are
        allowed), neighbours and bought-together items of the shopper's recent items, items
        popular around the shopper's last activity, trending now. Duplicates keep their first
        (highest priority) slot; rows are truncated to :meth:`pool_width`.
        ALS rank is 1-based, ``als_candidates + 1`` outside the ALS list. ``shoppers``: a
        :class:`~ml.model.state.ShopperState` or model rows (their stored state).
        """
        st = shoppers if isinstance(shoppers, ShopperState) else stored_state(self, shoppers)
        cands, als_rank, _ = self._candidate_pool(st, exclude_seen, als_ids)
        return cands, als_rank

    def _candidate_pool(
        self, st: ShopperState, exclude_seen: bool, als_ids: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, ListReasons]:
        """:meth:`candidates` plus each slot's source (a :class:`~ml.explain.ListReasons`)."""
        b_rows = len(st)
        s = self.serving
        a = self.arrays
        n_als = min(s.als_candidates, self.n_items)
        if als_ids is None:
            seen = st.seen if exclude_seen else None
            als_ids, _ = als_topk(st.factors, a["item_factors"], n_als, seen)
        no_anchor = np.full((b_rows, 0), -1, dtype=np.int64)
        parts = [(als_ids[:, :n_als], PERSONAL_TASTE, no_anchor)]
        if not exclude_seen and s.seen_candidates > 0:
            parts.append((_top_seen(st.table, st.rows, s.seen_candidates), BUY_AGAIN, no_anchor))
        recent = st.recent[:, : s.session_items]
        for table, kind in (("nbr_ids", SIMILAR_TO), ("cooc_top", BOUGHT_TOGETHER)):
            nb = a[table]
            if nb.shape[1] == 0:
                continue
            got = nb[np.maximum(recent, 0)][:, :, : s.neighbor_candidates]
            got = np.where(recent[:, :, None] >= 0, got, -1)
            anchor = np.broadcast_to(recent[:, :, None], got.shape).reshape(b_rows, -1)
            parts.append((got.reshape(b_rows, -1), kind, anchor.astype(np.int64)))
        bin_top = a["bin_top"]
        if bin_top.shape[1]:
            b = self.bins.bin_end(st.last_ts)
            parts.append((bin_top[b][:, : s.user_time_candidates], POPULAR, no_anchor))
        trend = self._trend_order[: s.trending_candidates]
        parts.append((np.broadcast_to(trend, (b_rows, len(trend))), TRENDING, no_anchor))
        cands = np.concatenate([p.astype(np.int64) for p, _, _ in parts], axis=1)
        anchors = [a if a.shape == p.shape else np.full(p.shape, -1, np.int64) for p, _, a in parts]
        sources = ListReasons(
            np.concatenate([np.full(p.shape, kind, np.int8) for p, kind, _ in parts], axis=1),
            np.concatenate(anchors, axis=1),
            np.full(cands.shape, np.nan),
        )
        als_rank = np.full(cands.shape, n_als + 1, dtype=np.int64)
        als_rank[:, :n_als] = np.arange(1, n_als + 1)
        cands = dedup_rows(cands)
        if exclude_seen:
            sn = st.seen
            cands[seen_mask(sn.indptr, sn.indices, self.n_items, np.arange(b_rows), cands)] = -1
        # Compact valid slots to the left (stable: keeps priority order), then truncate; with
        # seen items allowed the shopper's own items come on top of the usual pool.
        keep = np.argsort(cands < 0, axis=1, kind="stable")
        width = min(cands.shape[1], self.pool_width(exclude_seen))
        keep = keep[:, :width]
        return (
            np.take_along_axis(cands, keep, axis=1),
            np.take_along_axis(als_rank, keep, axis=1),
            sources.take(keep),
        )

    def pool_width(self, exclude_seen: bool) -> int:
        """Most candidates re-ranked per shopper."""
        s = self.serving
        return s.rerank_candidates + (0 if exclude_seen else s.seen_candidates)

    def buy_again_indices(self, uidx: np.ndarray, k: int) -> np.ndarray:
        """(len(uidx), k) pure buy-again lists (item indices, -1 padded) for known shoppers."""
        u = np.asarray(uidx, dtype=np.int64)
        top = _top_seen(self.table, u, k)
        rows = np.broadcast_to(u[:, None], top.shape)
        t = self.table
        score = csr_gather(
            t.indptr, t.indices, t.data["buy_again"], self.n_items, rows.ravel(), top.ravel()
        ).reshape(top.shape)
        top[score <= 0] = -1
        return top

    def features(
        self, shoppers: np.ndarray | ShopperState, cands: np.ndarray, als_rank: np.ndarray
    ) -> np.ndarray:
        """Features of a candidate matrix (:func:`~ml.model.features.candidate_features`)."""
        return candidate_features(self, shoppers, cands, als_rank)


def _top_seen(t: UserItemTable, u: np.ndarray, n: int) -> np.ndarray:
    """Each shopper's ``n`` seen items with the highest buy-again score, then most recent."""
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
