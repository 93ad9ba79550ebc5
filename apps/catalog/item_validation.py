"""Row validation for catalog items (and shopper attributes' JSON), with the shared pieces of
apps.catalog.validation: clean values, or `(field, message)` problems that callers turn into
`RowError`s naming the row index, so a batch stores its valid rows and reports every invalid one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from apps.catalog.validation import (
    ID_MAX_LENGTH,
    RowError,
    clean_id,
    id_problem,
    text_problem,
    unknown_fields,
)

ITEM_FIELDS = frozenset(
    {"item_id", "title", "description", "categories", "price", "in_stock", "attributes"}
)
TITLE_MAX_LENGTH = 500
DESCRIPTION_MAX_LENGTH = 20_000
CATEGORY_MAX_LENGTH = 200
CATEGORIES_MAX_COUNT = 100
ATTRIBUTES_MAX_BYTES = 8 * 1024
PRICE_MAX = Decimal("9999999999.99")  # Item.price: 12 digits, 2 decimal places


@dataclass(frozen=True, slots=True)
class ItemRow:
    item_id: str
    title: str
    description: str
    categories: list[str]
    price: Decimal | None
    in_stock: bool
    attributes: dict[str, Any]


def _price_parse(value: Any) -> Decimal | str | None:
    if value is None:
        return None
    if type(value) is bool or not isinstance(value, int | float | str | Decimal):
        return "Must be a decimal number."
    try:
        price = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        return "Must be a decimal number."
    if not price.is_finite():
        return "Must be a decimal number."
    if price < 0:
        return "Must be 0 or more."
    if price > PRICE_MAX:
        return f"At most {PRICE_MAX}."
    if price != price.quantize(Decimal("0.01")):
        return "At most 2 decimal places."
    return price.quantize(Decimal("0.01"))


JSON_NUMBER_LIMIT = 2**63


def json_number_problem(value: Any) -> str | None:
    """Why a parsed JSON value holds a number that cannot round-trip, or None.

    PostgreSQL's jsonb keeps any number as `numeric`; psycopg reads one of 2^63 or more (even
    written as a float, 1e300) back as a Python int that no 64-bit JSON encoder can write, so
    every later read of the row would fail. Infinity and NaN have no JSON form at all.
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            stack.extend(
                (f"{path}.{key}" if path else f"{key}", item) for key, item in node.items()
            )
        elif isinstance(node, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(node))
        elif isinstance(node, int | float) and not isinstance(node, bool):
            where = f" (at {path})" if path else ""
            if isinstance(node, float) and not math.isfinite(node):
                return f"Numbers must be finite{where}."
            if not -JSON_NUMBER_LIMIT < node < JSON_NUMBER_LIMIT:
                return f"Numbers must be between -(2^63 - 1) and 2^63 - 1{where}."
    return None


def attributes_problem(value: Any) -> str | None:
    """Why `value` is not an acceptable attributes object (JSON object, at most 8 KB, numbers
    within 64 bits), or None."""
    if not isinstance(value, dict):
        return "Must be a JSON object."
    if message := json_number_problem(value):
        return message
    try:
        encoded = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return "Must be a JSON object."
    if len(encoded) > ATTRIBUTES_MAX_BYTES:
        return f"At most {ATTRIBUTES_MAX_BYTES} bytes as JSON."
    if b"\\u0000" in encoded:
        # PostgreSQL jsonb cannot store NUL characters.
        return "Must not contain NUL characters."
    return None


def item_validate(raw: Any, *, item_id: str | None = None) -> ItemRow | list[tuple[str, str]]:
    """One item (full representation: omitted fields take their defaults). `item_id`, when
    given, comes from the URL and the body may repeat it but not contradict it."""
    if type(raw) is not dict:
        return [("", "Each item must be a JSON object.")]
    problems = [(field, "Unknown field.") for field in unknown_fields(raw, ITEM_FIELDS)]
    item_id = clean_id(item_id)
    if item_id is not None and "item_id" in raw and clean_id(raw["item_id"]) != item_id:
        problems.append(("item_id", "Must match the item_id in the URL."))
    resolved_id = item_id if item_id is not None else clean_id(raw.get("item_id"))
    if resolved_id is None:
        problems.append(("item_id", "This field is required."))
    elif message := id_problem(resolved_id, ID_MAX_LENGTH):
        problems.append(("item_id", message))
    title = raw.get("title", "")
    if message := text_problem(title, TITLE_MAX_LENGTH):
        problems.append(("title", message))
    description = raw.get("description", "")
    if message := text_problem(description, DESCRIPTION_MAX_LENGTH):
        problems.append(("description", message))
    categories = raw.get("categories", [])
    if type(categories) is not list:
        problems.append(("categories", "Must be a list of strings."))
    elif len(categories) > CATEGORIES_MAX_COUNT:
        problems.append(("categories", f"At most {CATEGORIES_MAX_COUNT} categories."))
    else:
        for category in categories:
            if message := id_problem(category, CATEGORY_MAX_LENGTH):
                problems.append(("categories", f"Each category: {message[0].lower()}{message[1:]}"))
                break
    price = _price_parse(raw.get("price"))
    if type(price) is str:
        problems.append(("price", price))
    in_stock = raw.get("in_stock", True)
    if type(in_stock) is not bool:
        problems.append(("in_stock", "Must be true or false."))
    attributes = raw.get("attributes", {})
    if message := attributes_problem(attributes):
        problems.append(("attributes", message))
    if problems:
        return problems
    return ItemRow(
        item_id=resolved_id,
        title=title,
        description=description,
        categories=list(dict.fromkeys(categories)),
        price=price,
        in_stock=in_stock,
        attributes=attributes,
    )


def items_validate(rows: list[Any]) -> tuple[list[tuple[int, ItemRow]], list[RowError]]:
    """Validate a batch of items. Returns ((input index, row) for valid rows, errors). An item_id
    repeated within the batch is an error on the later row (one upsert per item per batch)."""
    valid: list[tuple[int, ItemRow]] = []
    errors: list[RowError] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(rows):
        result = item_validate(raw)
        if isinstance(result, list):
            errors.extend(RowError(index, field, message) for field, message in result)
            continue
        if result.item_id in first_index:
            errors.append(
                RowError(
                    index,
                    "item_id",
                    f"Repeats the item_id of row {first_index[result.item_id]} in this batch.",
                )
            )
            continue
        first_index[result.item_id] = index
        valid.append((index, result))
    return valid, errors
