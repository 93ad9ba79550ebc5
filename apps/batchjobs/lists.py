"""Personal lists for many shoppers at once: the lists the serving API gives
(`GET /api/v1/recommendations/users/<id>`, apps.recommendations.serving), at batch speed.

Most shoppers of a job are known to the store's model and have nothing new since its training:
the API would serve them the model's top-100 (the precomputed list) filtered against the
catalog (hidden and out-of-stock items) and cut to k. Those are computed here in vectorised
batches (`RecommenderModel.recommend_indices`, the call the precompute makes) and filtered with
one boolean mask per model. Every other shopper (unknown to the model, events since training,
erased after the version's training, served by a non-model experiment arm, no model at all, or a
list the filters cut below k so the API would top it up) goes through the serving code itself,
one by one, without logging an impression. A job with a placement takes every shopper's served
list (k = 100) from the serving code and applies the placement's rules to it
(apps.merchandising.placing), as the API's placement path does. Serving is used read-only:
nothing here writes its caches beyond what a request would.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np
import orjson
import redis
from django.db import connection

from apps.batchjobs import placements
from apps.catalog.models import Shopper
from apps.catalog.recent import recent_is_new, recent_latest_key
from apps.core.cache import redis_client
from apps.core.models import ShopperErasure
from apps.recommendations.model_store import LoadedModel
from apps.recommendations.serving import LIST_SIZE, Filters, recommend_for_shopper
from apps.recommendations.serving.state import (
    Arm,
    catalog_state,
    erased_for,
    serving_model,
    store_state,
)

logger = logging.getLogger(__name__)

UNKNOWN_SHOPPER = "unknown_shopper"


@dataclass
class ChunkLists:
    """One chunk's output: JSON lines of the listed shoppers (input order) and failures."""

    lines: list[bytes] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


def _line(user_id: str, items: list[tuple[str, float]]) -> bytes:
    return (
        orjson.dumps({"user_id": user_id, "items": [{"item_id": i, "score": s} for i, s in items]})
        + b"\n"
    )


class ListMaker:
    """Lists of one store (the connection's schema) for one job: k items, an optional
    placement. Built once per chunk, so the store's state and catalog are read once."""

    def __init__(self, *, k: int, placement: str = "") -> None:
        self.k = k
        self.schema = connection.schema_name
        self.state = store_state(self.schema)
        self.catalog = catalog_state(self.schema)
        self.placement = placements.placement_resolve(placement) if placement else None
        self._banned: dict[int, np.ndarray] = {}

    def model_version_number(self) -> int | None:
        return self.state.default.number

    # --- the chunk ----------------------------------------------------------------------------
    def lists(self, user_ids: list[str]) -> ChunkLists:
        known = self._existing(user_ids)
        out = ChunkLists()
        listed: dict[str, list[tuple[str, float]]] = {}
        failed: dict[str, str] = {u: UNKNOWN_SHOPPER for u in user_ids if u not in known}
        present = [u for u in user_ids if u in known]
        slow: list[str] = []
        by_arm: dict[Arm, list[str]] = defaultdict(list)
        for user_id in present:
            by_arm[self.state.arm_for(user_id)].append(user_id)
        erased = self._erased_at(present)
        latest = self._latest_events(present)
        for arm, group in by_arm.items():
            loaded = serving_model(self.schema, arm) if arm.strategy == "model" else None
            if loaded is None or self.placement is not None:
                slow += group
                continue
            fast = [
                u
                for u in group
                if not erased_for(arm, erased.get(u))
                and latest is not None
                and not recent_is_new(latest.get(u), arm.cutoff)
            ]
            slow_here = set(group) - set(fast)
            done, short = self._vectorised(loaded, fast)
            listed.update(done)
            slow += [u for u in group if u in slow_here or u in short]
        for user_id in slow:
            try:
                listed[user_id] = self._one(user_id)
            except Exception as exc:  # the job goes on; the shopper is reported
                logger.exception("batch list failed for one shopper")
                failed[user_id] = f"error: {type(exc).__name__}"
        for user_id in user_ids:
            items = listed.get(user_id)
            if items is not None:
                out.lines.append(_line(user_id, items))
            else:
                out.failures.append((user_id, failed.get(user_id, "error: not listed")))
        return out

    # --- the fast path ------------------------------------------------------------------------
    def _vectorised(
        self, loaded: LoadedModel, user_ids: list[str]
    ) -> tuple[dict[str, list[tuple[str, float]]], set[str]]:
        """({shopper: list} of the shoppers the model lists in full, shoppers left to the
        serving code: unknown to the model, or fewer than k items left after filtering)."""
        model = loaded.model
        uidx = model.user_index.lookup(user_ids)
        rows = np.flatnonzero(uidx >= 0)
        short = {user_ids[r] for r in np.flatnonzero(uidx < 0).tolist()}
        done: dict[str, list[tuple[str, float]]] = {}
        if not len(rows):
            return done, short
        items, scores = model.recommend_indices(uidx[rows], LIST_SIZE, exclude_seen=True)
        ids = model._item_objects
        valid = (items >= 0) & ~self._banned_mask(loaded)[np.maximum(items, 0)]
        keep = np.argsort(~valid, axis=1, kind="stable")[:, : self.k]
        top = np.take_along_axis(items, keep, axis=1)
        top_scores = np.take_along_axis(scores, keep, axis=1)
        full = np.take_along_axis(valid, keep, axis=1).all(axis=1)
        if top.shape[1] < self.k:
            full[:] = False
        names = ids[np.maximum(top, 0)].ravel().tolist()
        # Python's round(), as serving's filter does (numpy's may differ in the last digit), so
        # scores match the API's to the byte; one map over the chunk.
        flat = top_scores.ravel().tolist()
        rounded = list(map(round, flat, repeat(6, len(flat))))
        width = top.shape[1]
        for n, (r, ok) in enumerate(zip(rows.tolist(), full.tolist(), strict=True)):
            if not ok:
                short.add(user_ids[r])
                continue
            start = n * width
            done[user_ids[r]] = list(
                zip(names[start : start + width], rounded[start : start + width], strict=True)
            )
        return done, short

    def _banned_mask(self, loaded: LoadedModel) -> np.ndarray:
        """Per model item: hidden or out of stock (the API's default `in_stock=true`)."""
        key = id(loaded)
        mask = self._banned.get(key)
        if mask is None:
            banned = self.catalog.hidden | self.catalog.out_of_stock
            mask = np.fromiter(
                (item in banned for item in loaded.model._item_objects),
                dtype=bool,
                count=loaded.model.n_items,
            )
            self._banned[key] = mask
        return mask

    # --- the serving code, one shopper --------------------------------------------------------
    def _one(self, user_id: str) -> list[tuple[str, float]]:
        if self.placement is None:
            served = recommend_for_shopper(
                user_id=user_id, filters=Filters(k=self.k), exclude_seen=True, log=False
            )
            return served.items
        # The candidates the API's placement path gets: the shopper's whole served list.
        served = recommend_for_shopper(
            user_id=user_id, filters=Filters(k=LIST_SIZE), exclude_seen=True, log=False
        )
        return placements.placement_apply(self.placement, candidates=served.items, k=self.k)

    # --- what decides the path ----------------------------------------------------------------
    # Both queries pass the chunk's ids as one array parameter: an IN list of thousands of
    # parameters costs more to build and send than the query takes.
    def _existing(self, user_ids: list[str]) -> set[str]:
        table = connection.ops.quote_name(Shopper._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT user_id FROM {table} WHERE user_id = ANY(%s)",
                [user_ids],
            )
            return {row[0] for row in cursor.fetchall()}

    def _erased_at(self, user_ids: list[str]) -> dict[str, float]:
        table = connection.ops.quote_name(ShopperErasure._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT user_id, erased_at FROM {table} "
                "WHERE schema_name = %s AND user_id = ANY(%s)",
                [self.schema, user_ids],
            )
            return {user_id: erased_at.timestamp() for user_id, erased_at in cursor.fetchall()}

    def _latest_events(self, user_ids: list[str]) -> dict[str, bytes | None] | None:
        """The newest event time Redis holds per shopper (one MGET); None when Redis fails
        (then every shopper goes through the serving code, which degrades on its own)."""
        if not user_ids:
            return {}
        keys = [recent_latest_key(u, schema_name=self.schema) for u in user_ids]
        try:
            values = redis_client().mget(keys)
        except redis.RedisError:
            logger.warning("batch lists: Redis unavailable, serving shopper by shopper")
            return None
        return dict(zip(user_ids, values, strict=True))
