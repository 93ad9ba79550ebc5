"""The rule parameters of a recommendation request (`placement`, `exclude`, `category`,
`price_min` / `price_max`, `attr.<name>`, `explain`, `user_id`), parsed into a Plan."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from apps.core.errors import ApplicationError
from apps.core.params import bool_param
from apps.merchandising.rules import NO_RULES, Condition, Rules, as_text
from apps.merchandising.rules_json import MAX_ATTRIBUTES, MAX_LIST_VALUES

_PARAMS = frozenset({"placement", "exclude", "price_min", "price_max", "explain"})


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(f"Invalid input in: {field}.", fields={field: [message]})


@dataclass(frozen=True)
class Plan:
    """What a request asks beyond the scenario's list."""

    placement: str | None
    rules: Rules
    explain: bool
    viewer: str  # rotation subject from the query (`user_id=` on item / trending lists)
    exclude_seen: bool = True


def wants_rules(query: Mapping[str, str]) -> bool:
    """Whether the query names a placement, a rule or `explain` (else: the plain path)."""
    for key in query:
        if key in _PARAMS or key.startswith("attr."):
            return True
    return "category" in query and len(query.getlist("category")) > 1  # type: ignore[attr-defined]


def _getlist(query, name: str) -> list[str]:
    getlist = getattr(query, "getlist", None)
    if getlist is not None:
        return getlist(name)
    value = query.get(name)
    return [] if value is None else (value if isinstance(value, list) else [value])


def _price(query, name: str) -> float | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise _invalid(name, "A number is required.") from None
    if not math.isfinite(value) or value < 0:
        raise _invalid(name, "Must be a finite number of at least 0.")
    return value


def plan_from_query(query: Mapping[str, str]) -> Plan:
    """Parse `placement`, `exclude` (ids, comma-separated or repeated), `category`
    (repeated: any of them), `price_min` / `price_max`, `attr.<name>` (repeated: any of the
    values), `explain` and `user_id`. Raises ApplicationError 400 naming the parameter."""
    placement = query.get("placement") or None
    if placement is not None and len(placement) > 64:
        raise _invalid("placement", "At most 64 characters.")
    exclude: set[str] = set()
    for raw in _getlist(query, "exclude"):
        for item in raw.split(","):
            item = item.strip()
            if not item:
                continue
            if len(item) > 128 or "\x00" in item:
                raise _invalid("exclude", "Item ids are 1-128 characters without NUL.")
            exclude.add(item)
    if len(exclude) > MAX_LIST_VALUES:
        raise _invalid("exclude", f"At most {MAX_LIST_VALUES} item ids.")
    categories = [c for c in _getlist(query, "category") if c]
    if any(len(c) > 200 for c in categories):
        raise _invalid("category", "At most 200 characters.")
    if len(categories) > 50:
        raise _invalid("category", "At most 50 categories.")
    price_min, price_max = _price(query, "price_min"), _price(query, "price_max")
    if price_min is not None and price_max is not None and price_min > price_max:
        raise _invalid("price_max", "Must be at least price_min.")
    attributes = []
    for key in query:
        if not key.startswith("attr."):
            continue
        name = key[5:]
        if not name or len(name) > 64:
            raise _invalid(key, "Attribute names are 1-64 characters.")
        values = [v for v in _getlist(query, key) if v != ""]
        if not values:
            raise _invalid(key, "Give at least one value.")
        attributes.append((name, frozenset(as_text(v) for v in values)))
    if len(attributes) > MAX_ATTRIBUTES:
        raise _invalid("attr", f"At most {MAX_ATTRIBUTES} attributes.")
    viewer = query.get("user_id") or ""
    if len(viewer) > 128 or "\x00" in viewer:
        raise _invalid("user_id", "Shopper ids are 1-128 characters without NUL.")
    rules = Rules(
        filters=Condition(
            categories=frozenset(categories) if categories else None,
            price_min=price_min,
            price_max=price_max,
            attributes=tuple(sorted(attributes)),
        ),
        exclude=frozenset(exclude),
    )
    return Plan(
        placement=placement,
        rules=rules if rules != Rules(filters=Condition()) else NO_RULES,
        explain=bool(bool_param(query, "explain", default=False)),
        viewer=viewer,
        exclude_seen=bool(bool_param(query, "exclude_seen", default=True)),
    )
