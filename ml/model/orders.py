"""A shopper's orders, kept compactly as three columns of their (shopper, item) cells.

``ord_last``: ordinal (1 = the shopper's first order) of the last order holding the item, 0 for
none; ``ord_count``: how many of the shopper's orders hold it; ``ord_mask``: bit ``j`` set when
the order ``j`` back from the latest holds it (``j < LAST_ORDERS``). The shopper's order count
is the largest ``ord_last`` of their cells, their order lines the sum of ``ord_count``, and
every line after an item's first is a reorder, so the basket features follow from the cells
alone: training fills them from events (:func:`order_cells`), fresh serving extends them with
new orders (:func:`add_orders`), and both read them through :func:`shopper_orders`.
"""

from __future__ import annotations

import numpy as np

from ml.data import UserItemTable
from ml.sparse_utils import csr_positions

ORDER_COLUMNS = ("ord_last", "ord_count", "ord_mask")
LAST_ORDERS = 5
_POPCOUNT = np.array([bin(j).count("1") for j in range(1 << LAST_ORDERS)], dtype=np.float64)


def order_cells(
    table: UserItemTable,
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    timestamps: np.ndarray,
    order_ids: np.ndarray,
) -> dict[str, np.ndarray]:
    """The :data:`ORDER_COLUMNS` of ``table``'s cells from purchase events carrying an order id.

    One order per (shopper, order id), placed at its earliest line (ties: order id). An item
    counts once per order. Events without a stored cell are ignored.
    """
    out = {name: np.zeros(table.nnz) for name in ORDER_COLUMNS}
    if len(user_idx) == 0:
        return out
    codes: dict[tuple[int, object], int] = {}
    pairs = zip(user_idx.tolist(), order_ids.tolist(), strict=True)
    key = np.fromiter(
        (codes.setdefault(k, len(codes)) for k in pairs),
        dtype=np.int64,
        count=len(user_idx),
    )
    n_keys = len(codes)
    start = np.full(n_keys, np.inf)
    np.minimum.at(start, key, timestamps.astype(np.float64))
    key_user = np.zeros(n_keys, dtype=np.int64)
    key_user[key] = user_idx
    names = [str(o) for _, o in codes]
    name_rank = np.empty(n_keys, dtype=np.int64)
    name_rank[sorted(range(n_keys), key=names.__getitem__)] = np.arange(n_keys)
    order = np.lexsort((name_rank, start, key_user))
    ku = key_user[order]
    first = np.ones(n_keys, dtype=bool)
    first[1:] = ku[1:] != ku[:-1]
    starts = np.flatnonzero(first)
    ordinal = np.empty(n_keys, dtype=np.int64)
    ordinal[order] = np.arange(n_keys) - starts[np.cumsum(first) - 1] + 1

    pos = csr_positions(table.indptr, table.indices, table.shape[1], user_idx, item_idx)
    ok = pos >= 0
    span = int(ordinal.max()) + 1
    line = np.unique(pos[ok] * span + ordinal[key[ok]])
    cell, line_ord = line // span, (line % span).astype(np.float64)
    np.maximum.at(out["ord_last"], cell, line_ord)
    np.add.at(out["ord_count"], cell, 1.0)
    n_orders = np.zeros(table.shape[0])
    np.maximum.at(n_orders, table.row_ids()[cell], line_ord)
    back = (n_orders[table.row_ids()[cell]] - line_ord).astype(np.int64)
    near = back < LAST_ORDERS
    np.add.at(out["ord_mask"], cell[near], np.ldexp(1.0, back[near]))
    return out


def add_orders(
    cols: dict[str, list[float]],
    pos: dict[int, int],
    items: np.ndarray,
    stamps: np.ndarray,
    order_ids: np.ndarray,
) -> None:
    """Extend one shopper's cell columns (lists, cell ``pos[item]``) in place with new orders.

    ``items``/``stamps``/``order_ids`` are the new events oldest first; those with an empty
    order id are skipped. Each distinct id is a new order after the stored ones, placed as
    :func:`order_cells` places them (an order already in training counts again).
    """
    start: dict[str, float] = {}
    lines: dict[str, dict[int, None]] = {}
    for item, ts, oid in zip(items.tolist(), stamps.tolist(), order_ids.tolist(), strict=True):
        if not oid:
            continue
        oid = str(oid)
        start[oid] = min(start.get(oid, ts), ts)
        lines.setdefault(oid, {})[item] = None
    if not lines:
        return
    new = sorted(lines, key=lambda o: (start[o], o))
    n_before = int(max(cols["ord_last"], default=0.0))
    total = n_before + len(new)
    mask = cols["ord_mask"]
    for j in range(len(mask)):
        mask[j] = float((int(mask[j]) << len(new)) & ((1 << LAST_ORDERS) - 1))
    for k, oid in enumerate(new, start=n_before + 1):
        for item in lines[oid]:
            j = pos[item]
            cols["ord_last"][j] = float(k)
            cols["ord_count"][j] += 1.0
            if total - k < LAST_ORDERS:
                mask[j] += float(1 << (total - k))


def shopper_orders(table: UserItemTable) -> tuple[np.ndarray, np.ndarray]:
    """Per table row: number of orders, and reorder rate (share of order lines whose item was
    in an earlier order of the shopper; NaN without orders)."""
    rows = table.row_ids()
    n_rows = table.shape[0]
    n_orders = np.zeros(n_rows)
    np.maximum.at(n_orders, rows, table.data["ord_last"])
    count = table.data["ord_count"]
    lines = np.bincount(rows, weights=count, minlength=n_rows)
    reorders = np.bincount(rows, weights=np.maximum(count - 1.0, 0.0), minlength=n_rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(lines > 0, reorders / lines, np.nan)
    return n_orders, rate


def last_orders_share(mask: np.ndarray, n_orders: np.ndarray) -> np.ndarray:
    """Share of the shopper's last (up to) :data:`LAST_ORDERS` orders holding the item (NaN
    for shoppers without orders)."""
    held = _POPCOUNT[np.clip(mask, 0, len(_POPCOUNT) - 1).astype(np.int64)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_orders > 0, held / np.minimum(n_orders, LAST_ORDERS), np.nan)
