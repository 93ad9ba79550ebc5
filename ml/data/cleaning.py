"""Whole-table operations on events that training needs before it splits them: exact repeats
dropped, the shoppers present, and how much of a later period repeats an earlier one."""

from __future__ import annotations

import numpy as np

from ml.data.records import Interactions, factorize


def drop_duplicate_events(interactions: Interactions) -> tuple[Interactions, int]:
    """The events without exact repeats of an earlier one (same shopper, item, type and
    second), and how many were dropped.

    Trackers that fire twice would otherwise put copies of one event on both sides of the
    per-user time split: the "future" would contain the past, which inflates validation
    scores and makes any store look like a repeat-purchase store. The first copy (and its
    value) is kept; everything else keeps its input order.
    """
    n = len(interactions)
    if n < 2:
        return interactions, 0
    users, _ = interactions.codes("user_ids")
    items, item_vocab = interactions.codes("item_ids")
    types, type_vocab = interactions.codes("event_types")
    # int64: the product of three code ranges overflows the int32 codes.
    key = (users.astype(np.int64) * max(len(item_vocab), 1) + items) * max(
        len(type_vocab), 1
    ) + types
    order = np.lexsort((np.arange(n), interactions.timestamps, key))
    k_s, t_s = key[order], interactions.timestamps[order]
    repeat = np.zeros(n, dtype=bool)
    repeat[1:] = (k_s[1:] == k_s[:-1]) & (t_s[1:] == t_s[:-1])
    n_repeat = int(repeat.sum())
    if n_repeat == 0:
        return interactions, 0
    keep = np.ones(n, dtype=bool)
    keep[order[repeat]] = False
    return interactions.subset(keep), n_repeat


def distinct_users(interactions: Interactions) -> list[str]:
    """The shoppers with events in ``interactions`` (one sort of int32 codes, no Python string
    per event)."""
    codes, vocab = interactions.codes("user_ids")
    return [str(u) for u in vocab[np.unique(codes)].tolist()] if len(codes) else []


def repeat_share(before: Interactions, after: Interactions) -> float:
    """Share of ``after`` events on items the same shopper already touched in ``before``."""
    if len(after) == 0:
        return 0.0
    users = joint_codes(before, after, "user_ids")
    items = joint_codes(before, after, "item_ids")
    key = users.astype(np.int64) * (int(items.max()) + 1) + items
    n = len(before)
    return float(np.isin(key[n:], key[:n]).mean())


def joint_codes(a: Interactions, b: Interactions, column: str) -> np.ndarray:
    """Codes of ``column`` over ``a`` then ``b`` in one code space (shared when both are subsets
    of one coded parent, else a fresh dict pass).
    """
    (ca, va), (cb, vb) = a.codes(column), b.codes(column)
    if va is vb:
        return np.concatenate([ca, cb])
    return factorize(np.concatenate([getattr(a, column), getattr(b, column)]))
