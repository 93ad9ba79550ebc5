"""Row validation for events, and the pieces every row validation shares (`RowError`, the id
and text rules), used by the API, the import commands and in-process callers (the demo seeder);
items are validated in apps.catalog.item_validation.

Hand-written on purpose: the event path has a budget of a few microseconds per row, which a
DRF serializer per row exceeds by two orders of magnitude. Each function returns the clean
values plus a list of `RowError`s naming the row index and the field, so a batch stores its
valid rows and reports every invalid one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apps.core.ids import ID_MAX_LENGTH, id_normalize
from apps.core.ids import id_problem as _id_rule_problem

# `dismiss`: "not interested" (kept out of the shopper's lists; not a training signal).
# `refund`: undoes the purchase of its (order_id, item_id) (README, "One purchase rule").
EVENT_TYPES = frozenset({"view", "add_to_cart", "purchase", "rating", "click", "dismiss", "refund"})
EVENT_FIELDS = frozenset(
    {
        "event_id",
        "user_id",
        "session_id",
        "item_id",
        "type",
        "value",
        "timestamp",
        "recommendation_id",
        "order_id",
    }
)
# `order_id` groups a purchase's lines into one order (a basket) and names the purchase a
# refund undoes (required there); other types refuse it.
ORDER_EVENT_TYPES = frozenset({"purchase", "refund"})

RECOMMENDATION_ID_MAX_LENGTH = 64
TIMESTAMP_MAX_FUTURE = timedelta(minutes=5)
TIMESTAMP_MAX_PAST = timedelta(days=3 * 365 + 1)
# An event's `value` other than a rating's (a quantity, or a purchase's amount) is at most this.
# float8 (catalog_event.value) keeps every cent of an amount up to ~9e13, and analytics sums
# revenue as Decimal quantized to cents within Python's 28-digit context: 1e12 a purchase leaves
# room for 1e14 of them, where one 1e27 made every summary fail. It is 100 times the highest
# catalog price (apps.catalog.item_validation.PRICE_MAX), for a line of many units.
EVENT_VALUE_MAX = 1e12
EVENT_VALUE_MAX_TEXT = "1e12"

# An event as written: (event_id, user_id, item_id, type, value, timestamp, recommendation_id,
# session_id, order_id). user_id is None only when session_id is set (an anonymous visitor).
EventRow = tuple[
    str | None, str | None, str, str, float | None, datetime, str | None, str | None, str | None
]


@dataclass(frozen=True, slots=True)
class RowError:
    index: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


def id_problem(value: Any, max_length: int) -> str | None:
    """Why `value` breaks the id rule of apps.core.ids (after NFC normalisation), or None."""
    if type(value) is str:
        value = id_normalize(value)
    return _id_rule_problem(value, max_length=max_length)


def clean_id(value: Any) -> Any:
    return id_normalize(value) if type(value) is str and not value.isascii() else value


def text_problem(value: Any, max_length: int) -> str | None:
    if type(value) is not str:
        return "Must be a string."
    if len(value) > max_length:
        return f"At most {max_length} characters."
    if "\x00" in value:
        return "Must not contain NUL characters."
    return None


def unknown_fields(row: dict, allowed: frozenset[str]) -> list[str]:
    return sorted(str(key) for key in row if key not in allowed)


def event_timestamp_bounds(now: datetime) -> tuple[datetime, datetime]:
    return now - TIMESTAMP_MAX_PAST, now + TIMESTAMP_MAX_FUTURE


def _timestamp_parse(value: Any, low: datetime, high: datetime) -> datetime | str:
    """A datetime, or the message saying why `value` is not an acceptable event time."""
    if type(value) is str:
        if len(value) > 64:
            return "Must be an ISO 8601 date-time with a time zone."
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return "Must be an ISO 8601 date-time with a time zone."
    elif isinstance(value, datetime):
        moment = value
    else:
        return "Must be an ISO 8601 date-time with a time zone."
    if moment.tzinfo is None or moment.utcoffset() is None:
        return "Must include a time zone (e.g. Z or +02:00)."
    if moment > high:
        return "Must not be more than 5 minutes in the future."
    if moment < low:
        return "Must not be more than 3 years in the past."
    # Stored in UTC whatever the offset: PostgreSQL's timestamptz input accepts offsets up to
    # ±15:59 only, and Python parses any below ±24:00 (with seconds and microseconds).
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def _event_problems(raw: Any, low: datetime, high: datetime) -> list[tuple[str, str]]:
    """Every (field, message) wrong with one event. Slow path: only runs for invalid rows."""
    if type(raw) is not dict:
        return [("", "Each event must be a JSON object.")]
    problems = [(field, "Unknown field.") for field in unknown_fields(raw, EVENT_FIELDS)]
    if raw.get("user_id") is None and raw.get("session_id") is None:
        problems.append(("user_id", "This field is required (unless session_id is given)."))
    for field in ("user_id", "item_id", "event_id", "session_id", "order_id"):
        if raw.get(field) is not None and (message := id_problem(raw[field], ID_MAX_LENGTH)):
            problems.append((field, message))
        elif field == "item_id" and "item_id" not in raw:
            problems.append(("item_id", "This field is required."))
    kind = raw.get("type")
    # `type` may be any JSON value here (a list or an object is unhashable): only a known
    # type is checked against the order rule; a wrong type is reported below.
    if (
        raw.get("order_id") is not None
        and type(kind) is str
        and kind in EVENT_TYPES
        and kind not in ORDER_EVENT_TYPES
    ):
        problems.append(("order_id", "Only purchase and refund events carry an order_id."))
    elif kind == "refund" and raw.get("order_id") is None:
        problems.append(("order_id", "A refund needs the order_id of the purchase it undoes."))
    if "type" not in raw:
        problems.append(("type", "This field is required."))
    elif type(kind) is not str or kind not in EVENT_TYPES:
        problems.append(("type", f"Must be one of: {', '.join(sorted(EVENT_TYPES))}."))
    value = raw.get("value")
    if value is not None:
        if type(value) not in (int, float) or not math.isfinite(value):
            problems.append(("value", "Must be a number."))
        elif kind == "rating" and not 1 <= value <= 5:
            problems.append(("value", "A rating must be between 1 and 5."))
        elif kind != "rating" and value <= 0:
            problems.append(("value", "A quantity must be greater than 0."))
        elif kind != "rating" and value > EVENT_VALUE_MAX:
            problems.append(("value", f"A quantity must be at most {EVENT_VALUE_MAX_TEXT}."))
    elif kind == "rating":
        problems.append(("value", "A rating needs a value between 1 and 5."))
    if "timestamp" not in raw:
        problems.append(("timestamp", "This field is required."))
    else:
        moment = _timestamp_parse(raw["timestamp"], low, high)
        if type(moment) is str:
            problems.append(("timestamp", moment))
    recommendation_id = raw.get("recommendation_id")
    if recommendation_id is not None and (
        message := id_problem(recommendation_id, RECOMMENDATION_ID_MAX_LENGTH)
    ):
        problems.append(("recommendation_id", message))
    return problems


def events_validate(
    rows: list[Any], *, now: datetime
) -> tuple[list[EventRow], list[RowError], int]:
    """Validate a batch of raw events.

    Returns (valid rows in input order, errors, duplicates within the batch). A row repeating an
    `event_id` seen earlier in the same batch is a duplicate, not an error, and is dropped here.
    """
    low, high = event_timestamp_bounds(now)
    valid: list[EventRow] = []
    errors: list[RowError] = []
    seen_ids: set[str] = set()
    duplicates = 0
    append = valid.append
    fields = EVENT_FIELDS
    types = EVENT_TYPES
    for index, raw in enumerate(rows):
        # Fast path: straight-line checks for the common valid row; anything off falls through
        # to `_event_problems`, which names every wrong field.
        if type(raw) is dict and raw.keys() <= fields:
            event_id = clean_id(raw.get("event_id"))
            user_id = clean_id(raw.get("user_id"))
            item_id = clean_id(raw.get("item_id"))
            kind = raw.get("type")
            value = raw.get("value")
            recommendation_id = raw.get("recommendation_id")
            session_id = clean_id(raw.get("session_id"))
            order_id = clean_id(raw.get("order_id"))
            moment = _timestamp_parse(raw.get("timestamp"), low, high)
            if (
                (
                    (
                        type(user_id) is str
                        and 0 < len(user_id) <= ID_MAX_LENGTH
                        and user_id.isprintable()
                        and user_id[0] != " " != user_id[-1]
                    )
                    or (user_id is None and session_id is not None)
                )
                and type(item_id) is str
                and 0 < len(item_id) <= ID_MAX_LENGTH
                and type(kind) is str
                and kind in types
                and type(moment) is datetime
                # printable: no NUL or other control characters, no line breaks.
                and item_id.isprintable()
                and item_id[0] != " " != item_id[-1]
                and (
                    event_id is None
                    or (
                        type(event_id) is str
                        and 0 < len(event_id) <= ID_MAX_LENGTH
                        and event_id.isprintable()
                        and event_id[0] != " " != event_id[-1]
                    )
                )
                and (
                    recommendation_id is None
                    or (
                        type(recommendation_id) is str
                        and 0 < len(recommendation_id) <= RECOMMENDATION_ID_MAX_LENGTH
                        and recommendation_id.isprintable()
                        and recommendation_id[0] != " " != recommendation_id[-1]
                    )
                )
                and (
                    session_id is None
                    or (
                        type(session_id) is str
                        and 0 < len(session_id) <= ID_MAX_LENGTH
                        and session_id.isprintable()
                        and session_id[0] != " " != session_id[-1]
                    )
                )
                and (
                    (order_id is None and kind != "refund")
                    or (
                        (kind == "purchase" or kind == "refund")
                        and type(order_id) is str
                        and 0 < len(order_id) <= ID_MAX_LENGTH
                        and order_id.isprintable()
                        and order_id[0] != " " != order_id[-1]
                    )
                )
            ):
                if value is None:
                    ok = kind != "rating"
                elif (type(value) is int or type(value) is float) and math.isfinite(value):
                    ok = 1 <= value <= 5 if kind == "rating" else 0 < value <= EVENT_VALUE_MAX
                    value = float(value)
                else:
                    ok = False
                if ok:
                    if event_id is not None:
                        if event_id in seen_ids:
                            duplicates += 1
                            continue
                        seen_ids.add(event_id)
                    append(
                        (
                            event_id,
                            user_id,
                            item_id,
                            kind,
                            value,
                            moment,
                            recommendation_id,
                            session_id,
                            order_id,
                        )
                    )
                    continue
        for field, message in _event_problems(raw, low, high) or [("", "Invalid event.")]:
            errors.append(RowError(index, field, message))
    return valid, errors, duplicates
