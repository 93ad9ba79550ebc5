"""Raw input: shopper events (:class:`Interactions`; item metadata is ml.data.catalog).

Events are held coded: int32 codes into id vocabularies (the distinct shopper, item and order
ids, each string stored once), int8 event-type codes, float32 values and int64 timestamps,
about 25 bytes an event (object arrays of strings cost hundreds). Subsets (splits) hold an
index into their parent's columns rather than copies (4 bytes an event).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

EVENT_TYPES = ("view", "add_to_cart", "purchase", "rating", "click")
DAY = 86_400

_TYPE_VOCAB = np.array(EVENT_TYPES, dtype=object)
_TYPE_CODE = {t: c for c, t in enumerate(EVENT_TYPES)}
# Column name -> (codes key, vocabulary key) of the coded id columns.
_CODED = {
    "user_ids": "user",
    "item_ids": "item",
    "event_types": "type",
    "order_ids": "order",
}
_CODE_DTYPES = {"user": np.int32, "item": np.int32, "type": np.int8, "order": np.int32}


def factorize(values: np.ndarray) -> np.ndarray:
    """Integer code per value (int64), codes in order of first appearance.

    A dict pass: much faster than ``np.unique`` on object arrays of strings.
    """
    codes: dict[object, int] = {}
    return np.fromiter(
        (codes.setdefault(v, len(codes)) for v in values.tolist()),
        dtype=np.int64,
        count=len(values),
    )


def _vocab(keys: Iterable[object]) -> np.ndarray:
    keys = list(keys)
    out = np.empty(len(keys), dtype=object)
    out[:] = keys
    return out


def _coded(values: Sequence[object] | np.ndarray, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """(codes, vocabulary of str) of an id column, codes in order of first appearance."""
    seen: dict[str, int] = {}
    listed = values.tolist() if isinstance(values, np.ndarray) else list(values)
    codes = np.fromiter(
        (seen.setdefault(str(v), len(seen)) for v in listed), dtype=dtype, count=len(listed)
    )
    return codes, _vocab(seen)


class Interactions:
    """Shopper events, one entry per event, all columns of equal length.

    Built from string columns (``Interactions(user_ids=…, item_ids=…, event_types=…, values=…,
    timestamps=…, order_ids=…)``, coded on the way in) or from codes (:meth:`from_codes`, what
    the training reader streams into). ``values`` holds the rating for ``rating`` events and
    NaN otherwise; ``timestamps`` are unix seconds; ``order_ids`` names the order a purchase
    belongs to, ``""`` when unknown (the default: every event unknown). Treat an instance as
    immutable.

    The string columns (``user_ids``, ``item_ids``, ``event_types``, ``order_ids``) are built on
    each access (``vocabulary[codes]``, 8 bytes an event); code that reads a column more than
    once, or over millions of events, uses :meth:`codes` instead.
    """

    def __init__(
        self,
        user_ids: Sequence[object] | np.ndarray,
        item_ids: Sequence[object] | np.ndarray,
        event_types: Sequence[object] | np.ndarray,
        values: Sequence[float] | np.ndarray,
        timestamps: Sequence[int] | np.ndarray,
        order_ids: Sequence[object] | np.ndarray | None = None,
    ) -> None:
        n = len(user_ids)
        columns = {
            "item_ids": item_ids,
            "event_types": event_types,
            "values": values,
            "timestamps": timestamps,
        }
        if order_ids is not None:
            columns["order_ids"] = order_ids
        for name, column in columns.items():
            if len(column) != n:
                raise ValueError(f"Interactions.{name} has a different length than user_ids")
        user_codes, user_vocab = _coded(user_ids, np.int32)
        item_codes, item_vocab = _coded(item_ids, np.int32)
        kinds, kind_vocab = _coded(event_types, np.int8)
        unknown = set(kind_vocab.tolist()) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event types: {sorted(unknown)}")
        type_codes = np.array([_TYPE_CODE[t] for t in kind_vocab.tolist()], dtype=np.int8)
        order_codes, order_vocab = None, None
        if order_ids is not None:
            # "" and None (unknown) are code 0.
            order_codes, order_vocab = _coded(
                ["" if o is None else o for o in np.asarray(order_ids, dtype=object).tolist()],
                np.int32,
            )
            if "" not in set(order_vocab.tolist()):
                order_codes = order_codes + 1
                order_vocab = _vocab(["", *order_vocab.tolist()])
            elif order_vocab[0] != "":
                blank = order_vocab.tolist().index("")
                remap = np.arange(len(order_vocab), dtype=np.int32) + 1
                remap[blank] = 0
                remap[blank + 1 :] -= 1
                order_codes = remap[order_codes]
                rest = [o for o in order_vocab.tolist() if o != ""]
                order_vocab = _vocab(["", *rest])
        self._set(
            user_codes=user_codes,
            user_vocab=user_vocab,
            item_codes=item_codes,
            item_vocab=item_vocab,
            type_codes=type_codes[kinds] if n else np.zeros(0, np.int8),
            values=np.asarray(values, dtype=np.float64),
            timestamps=np.asarray(timestamps, dtype=np.int64),
            order_codes=order_codes,
            order_vocab=order_vocab,
        )

    @classmethod
    def from_codes(
        cls,
        *,
        user_codes: np.ndarray,
        user_vocab: np.ndarray,
        item_codes: np.ndarray,
        item_vocab: np.ndarray,
        type_codes: np.ndarray,
        values: np.ndarray,
        timestamps: np.ndarray,
        order_codes: np.ndarray | None = None,
        order_vocab: np.ndarray | None = None,
    ) -> Interactions:
        """Events already coded: ``user_vocab[user_codes]`` are the shopper ids (likewise
        items), ``type_codes`` index :data:`EVENT_TYPES`, ``order_codes`` index
        ``order_vocab`` whose entry 0 is ``""`` (unknown). Arrays are cast to the compact
        dtypes (a copy only when they differ). Raises ``ValueError`` on unequal lengths, a
        type code outside EVENT_TYPES or an order vocabulary not starting with ``""``."""
        n = len(user_codes)
        for name, column in (
            ("item_codes", item_codes),
            ("type_codes", type_codes),
            ("values", values),
            ("timestamps", timestamps),
            ("order_codes", order_codes if order_codes is not None else user_codes),
        ):
            if len(column) != n:
                raise ValueError(f"Interactions.{name} has a different length than user_codes")
        if n and (int(type_codes.min()) < 0 or int(type_codes.max()) >= len(EVENT_TYPES)):
            raise ValueError("type codes must index EVENT_TYPES")
        if order_vocab is not None and (len(order_vocab) == 0 or order_vocab[0] != ""):
            raise ValueError('order_vocab must start with "" (unknown order)')
        out = cls.__new__(cls)
        out._set(
            user_codes=user_codes,
            user_vocab=np.asarray(user_vocab, dtype=object),
            item_codes=item_codes,
            item_vocab=np.asarray(item_vocab, dtype=object),
            type_codes=type_codes,
            values=values,
            timestamps=timestamps,
            order_codes=order_codes,
            order_vocab=None if order_vocab is None else np.asarray(order_vocab, dtype=object),
        )
        return out

    def _set(
        self,
        *,
        user_codes,
        user_vocab,
        item_codes,
        item_vocab,
        type_codes,
        values,
        timestamps,
        order_codes,
        order_vocab,
    ) -> None:
        n = len(user_codes)
        if order_codes is None:
            order_codes, order_vocab = np.zeros(n, dtype=np.int32), _vocab([""])
        # Rating values are small numbers: float32 holds them exactly (0.5 steps and the like).
        self._columns = {
            "user": np.asarray(user_codes, dtype=np.int32),
            "item": np.asarray(item_codes, dtype=np.int32),
            "type": np.asarray(type_codes, dtype=np.int8),
            "value": np.asarray(values, dtype=np.float32),
            "ts": np.asarray(timestamps, dtype=np.int64),
            "order": np.asarray(order_codes, dtype=np.int32),
        }
        self._vocabs = {
            "user": user_vocab,
            "item": item_vocab,
            "type": _TYPE_VOCAB,
            "order": order_vocab,
        }
        self._rows: np.ndarray | None = None
        self._n = n

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[
            tuple[object, object, str, float | None, int | float]
            | tuple[object, object, str, float | None, int | float, object]
        ],
    ) -> Interactions:
        """Build from ``(user_id, item_id, event_type, value_or_None, ts_seconds[, order_id])``
        tuples.

        Ids are converted to ``str``; a missing or None ``order_id`` is ``""`` (unknown).
        Raises ``ValueError`` for an event type outside ``EVENT_TYPES``.
        """
        users: list[object] = []
        items: list[object] = []
        types: list[str] = []
        values: list[float] = []
        stamps: list[int] = []
        orders: list[object] = []
        for row in rows:
            user_id, item_id, event_type, value, ts = row[:5]
            users.append(user_id)
            items.append(item_id)
            types.append(str(event_type))
            values.append(np.nan if value is None else float(value))
            stamps.append(int(ts))
            order_id = row[5] if len(row) > 5 else None
            orders.append("" if order_id is None else str(order_id))
        return cls(
            user_ids=users,
            item_ids=items,
            event_types=types,
            values=np.array(values, dtype=np.float64),
            timestamps=np.array(stamps, dtype=np.int64),
            order_ids=orders,
        )

    @classmethod
    def empty(cls) -> Interactions:
        return cls.from_rows([])

    def __len__(self) -> int:
        return self._n

    def _column(self, key: str) -> np.ndarray:
        column = self._columns[key]
        return column if self._rows is None else column[self._rows]

    def subset(self, mask_or_index: np.ndarray) -> Interactions:
        """Rows selected by a boolean mask or an index array (a new instance).

        Not validated again, and not a copy: the subset keeps an index into its parent's
        columns (4 bytes an event) and shares its vocabularies, so ``codes`` of a subset are
        comparable with its parent's and its siblings'.
        """
        selector = np.asarray(mask_or_index)
        index = np.flatnonzero(selector) if selector.dtype == bool else selector
        if self._rows is not None:
            index = self._rows[index]
        dtype = np.int32 if len(self._columns["ts"]) < 2**31 else np.int64
        out = Interactions.__new__(Interactions)
        out._columns, out._vocabs = self._columns, self._vocabs
        out._rows = np.asarray(index, dtype=dtype)
        out._n = len(out._rows)
        return out

    def codes(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, vocabulary)`` of an id column (``user_ids``, ``item_ids``,
        ``event_types``, ``order_ids``): ``vocabulary[codes]`` equals the column. Codes are
        int32 (int8 for event types: indices into :data:`EVENT_TYPES`; order code 0 is ``""``,
        unknown); widen them before multiplying codes into combined keys. Subsets share their
        parent's vocabulary, which may hold values they no longer contain.
        """
        key = _CODED[column]
        return self._column(key), self._vocabs[key]

    @property
    def user_ids(self) -> np.ndarray:
        codes, vocab = self.codes("user_ids")
        return vocab[codes]

    @property
    def item_ids(self) -> np.ndarray:
        codes, vocab = self.codes("item_ids")
        return vocab[codes]

    @property
    def event_types(self) -> np.ndarray:
        codes, vocab = self.codes("event_types")
        return vocab[codes]

    @property
    def order_ids(self) -> np.ndarray:
        codes, vocab = self.codes("order_ids")
        return vocab[codes]

    @property
    def values(self) -> np.ndarray:
        """Rating values (float64; NaN for events without one)."""
        return self._column("value").astype(np.float64)

    @property
    def timestamps(self) -> np.ndarray:
        return self._column("ts")

    def nbytes(self) -> int:
        """Bytes held by the event columns (this instance's index for a subset); vocabularies
        not counted."""
        if self._rows is not None:
            return int(self._rows.nbytes)
        return int(sum(column.nbytes for column in self._columns.values()))

    def order_mask(self) -> np.ndarray:
        """Boolean mask of the purchases that carry an order id."""
        return (self._column("order") > 0) & self.type_mask("purchase")

    def type_mask(self, event_type: str) -> np.ndarray:
        """Boolean mask of the events of one type."""
        code = _TYPE_CODE.get(event_type)
        if code is None:
            return np.zeros(len(self), dtype=bool)
        return self._column("type") == code
