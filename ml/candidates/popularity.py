"""Popularity, trending (time-decayed popularity) and popularity around a point in time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.data import DAY


def popularity_scores(item_idx: np.ndarray, user_idx: np.ndarray, n_items: int) -> np.ndarray:
    """Distinct shoppers per item; ties broken by raw event count (adds < 1).

    Counting shoppers rather than events keeps one compulsive viewer from making an item popular.
    """
    if len(item_idx) == 0:
        return np.zeros(n_items)
    events = np.bincount(item_idx, minlength=n_items).astype(np.float64)
    # Distinct (item, shopper) pairs as one int64 key: np.unique(axis=1) is many times slower.
    key = np.unique(item_idx.astype(np.int64) * (int(user_idx.max()) + 1) + user_idx)
    shoppers = np.bincount(key // (int(user_idx.max()) + 1), minlength=n_items).astype(np.float64)
    return shoppers + events / (events.max() + 1.0)


def trending_scores(
    item_idx: np.ndarray,
    timestamps: np.ndarray,
    weights: np.ndarray,
    n_items: int,
    *,
    reference_ts: int,
    half_life_days: float,
) -> np.ndarray:
    """Sum over events of ``weight * 0.5 ** (age_days / half_life_days)`` per item.

    Age is measured back from ``reference_ts``; events after it count as age 0.
    """
    if len(item_idx) == 0:
        return np.zeros(n_items)
    age = np.maximum(reference_ts - timestamps, 0) / DAY
    decayed = weights * np.power(0.5, age / half_life_days)
    return np.bincount(item_idx, weights=decayed, minlength=n_items)


@dataclass
class TimeBins:
    """Cumulative per-item event counts over equal-width time bins.

    ``cum[i, b]`` = events on item i in bins ``< b`` (so ``cum[:, 0] == 0``); ``total`` is the
    same over all items. Lets features ask "how popular was this item in the N days before t"
    for any t, in O(1) per (item, t).
    """

    origin: int
    width: int
    cum: np.ndarray  # (n_items, n_bins + 1) float32
    total: np.ndarray  # (n_bins + 1,) float64

    @classmethod
    def build(
        cls, item_idx: np.ndarray, timestamps: np.ndarray, n_items: int, max_bins: int = 192
    ) -> TimeBins:
        if len(timestamps) == 0:
            return cls(0, DAY, np.zeros((n_items, 2), np.float32), np.zeros(2))
        origin = int(timestamps.min())
        span = int(timestamps.max()) - origin + 1
        width = max(DAY, -(-span // max_bins))
        n_bins = -(-span // width)
        b = ((timestamps - origin) // width).astype(np.int64)
        # Counted straight into the cumulative table (its first column stays 0) and summed in
        # place: one (items x bins) array, not two.
        cum = np.zeros((n_items, n_bins + 1), dtype=np.float32)
        np.add.at(cum, (item_idx, b + 1), 1.0)
        total = np.concatenate([[0.0], np.cumsum(cum.sum(axis=0, dtype=np.float64)[1:])])
        np.cumsum(cum, axis=1, out=cum)
        return cls(origin, int(width), cum, total)

    @property
    def n_bins(self) -> int:
        return self.cum.shape[1] - 1

    def bin_end(self, ts: np.ndarray) -> np.ndarray:
        """Index into ``cum`` covering all events at or before ``ts`` (clipped to the range)."""
        b = (np.asarray(ts, dtype=np.int64) - self.origin) // self.width + 1
        return np.clip(b, 0, self.n_bins)

    def window_share(self, items: np.ndarray, end_ts: np.ndarray, days: float) -> np.ndarray:
        """Share of all events in ``(end_ts - days, end_ts]`` that were on ``items``.

        ``items`` and ``end_ts`` broadcast together; resolution is one bin (>= 1 day). Items < 0
        (padding) give 0.
        """
        end = self.bin_end(end_ts)
        start = np.maximum(end - max(1, round(days * DAY / self.width)), 0)
        items = np.asarray(items)
        safe = np.maximum(items, 0)
        hits = self.cum[safe, end] - self.cum[safe, start]
        denom = self.total[end] - self.total[start]
        share = hits / np.maximum(denom, 1.0)
        return np.where(items >= 0, share, 0.0)

    def top_items_per_bin(self, days: float, k: int) -> np.ndarray:
        """(n_bins + 1, k) most popular items in the ``days`` window ending at each bin end."""
        n_items = self.cum.shape[0]
        k = min(k, n_items)
        ends = np.arange(self.n_bins + 1)
        starts = np.maximum(ends - max(1, round(days * DAY / self.width)), 0)
        out = np.full((len(ends), k), -1, dtype=np.int32)
        if k == 0:
            return out
        for e, s in zip(ends, starts, strict=True):
            window = self.cum[:, e] - self.cum[:, s]
            top = np.argpartition(-window, k - 1)[:k] if k < n_items else np.arange(n_items)
            top = top[np.lexsort((top, -window[top]))]
            top = top[window[top] > 0]
            out[e, : len(top)] = top
        return out
