"""Buy-again: which of the shopper's repeat items are due again."""

from __future__ import annotations

import numpy as np

from ml.data import DAY, UserItemTable


def cell_intervals(table: UserItemTable) -> np.ndarray:
    """Shopper's own mean repurchase interval per cell in days (NaN with < 2 occasions)."""
    n = table.data["repeat_count"]
    span = table.data["last_repeat_ts"] - table.data["first_repeat_ts"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n >= 2, span / DAY / np.maximum(n - 1, 1), np.nan)
    return out


def item_intervals(table: UserItemTable, n_items: int) -> np.ndarray:
    """Median over shoppers of their repurchase interval, per item (days; NaN if nobody
    bought it twice). Intervals under a day are floored at one day.
    """
    iv = cell_intervals(table)
    ok = ~np.isnan(iv)
    out = np.full(n_items, np.nan)
    if not ok.any():
        return out
    items = table.indices[ok]
    vals = np.maximum(iv[ok], 1.0)
    order = np.lexsort((vals, items))
    items, vals = items[order], vals[order]
    uniq, starts, counts = np.unique(items, return_index=True, return_counts=True)
    lo = vals[starts + (counts - 1) // 2]
    hi = vals[starts + counts // 2]
    out[uniq] = (lo + hi) / 2.0
    return out


def buy_again_scores(
    table: UserItemTable, item_interval: np.ndarray, reference_ts: float | np.ndarray
) -> np.ndarray:
    """Per-cell buy-again score (0 for cells never repeated/bought) as of ``reference_ts``
    (one time, or one per cell).

    ``score = log1p(occasions) * (0.25 + timing)`` where ``timing = exp(-ln(due)^2 / 2)`` peaks
    at 1 when the days since the last occasion equal the expected interval (the shopper's own
    when bought at least twice, else the item's median) and is 0.5 when no interval is known.
    Frequent items dominate; among them, the ones that are due come first.
    """
    n = table.data["repeat_count"]
    own = cell_intervals(table)
    expected = np.where(np.isnan(own), item_interval[table.indices], own)
    days_since = np.maximum(reference_ts - table.data["last_repeat_ts"], 0) / DAY
    with np.errstate(invalid="ignore", divide="ignore"):
        due = np.maximum(days_since, 0.5) / np.maximum(expected, 1.0)
        timing = np.where(np.isnan(expected), 0.5, np.exp(-0.5 * np.log(due) ** 2))
    return np.where(n > 0, np.log1p(n) * (0.25 + timing), 0.0)
