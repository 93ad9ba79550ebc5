"""The JSON form of placement rules and its validation (`parse_rules`); the rules themselves
and the order they apply in: `apps.merchandising.rules`. Pure Python.

Rules JSON (every key optional)::

    {
      "filters":   {"categories": ["shoes", "bags"], "price_min": 10, "price_max": 120,
                    "in_stock": true, "attributes": {"brand": ["acme", "zeta"], "vegan": true}},
      "exclude":   ["sku-1"],                 # never shown
      "hidden":    ["sku-2"],                 # never shown (the store's "hide from this slot")
      "boosts":    [{"when": {"attributes": {"on_sale": true}}, "weight": 1.5, "name": "sale"},
                    {"when": {"attributes": {"brand": "zeta"}}, "weight": 0.5}],
      "pins":      [{"item_id": "sku-9", "position": 1}],
      "diversity": {"max_per_category": 2, "max_per_attribute": {"brand": 1}},
      "rotation":  {"window_seconds": 3600}
    }

A condition (`filters`, a boost's `when`) matches an item when every key it names matches:
`categories` any of them, `price_min` / `price_max` inclusive (an item without a price never
matches a price bound), `in_stock`, `attributes` each name equal to the value or, for a list,
to any of its values (an item attribute that is itself a list matches when any element does),
`items` one of those ids. Values compare as text: `true`, `"true"` and `"True"` are one value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from apps.merchandising.rules import (
    ANY_ITEM,
    NO_RULES,
    Boost,
    Condition,
    Diversity,
    Pin,
    Rules,
    as_text,
)

MAX_LIST_VALUES = 500  # ids in exclude / hidden / items, values of an attribute, categories
MAX_BOOSTS = 20
MAX_PINS = 20
MAX_ATTRIBUTES = 20
MAX_POSITION = 100
MAX_ROTATION_SECONDS = 30 * 24 * 3600
MAX_TEXT = 200


class RuleError(ValueError):
    """Invalid rules: `field` is the path of the offending value (e.g. `boosts[0].weight`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RuleError(where, "Must be a JSON object.")
    return value


def _unknown_keys(value: dict, allowed: Iterable[str], where: str) -> None:
    for key in value:
        if key not in allowed:
            name = f"{where}.{key}" if where else str(key)
            raise RuleError(name, f"Unknown key; expected one of: {', '.join(sorted(allowed))}.")


def _text(value: Any, where: str, max_length: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RuleError(where, "Must be a non-empty string.")
    if len(value) > max_length:
        raise RuleError(where, f"At most {max_length} characters.")
    if "\x00" in value:
        raise RuleError(where, "Must not contain NUL characters.")
    return value


def _texts(value: Any, where: str, max_length: int = MAX_TEXT) -> frozenset[str]:
    if not isinstance(value, list):
        raise RuleError(where, "Must be a list of strings.")
    if len(value) > MAX_LIST_VALUES:
        raise RuleError(where, f"At most {MAX_LIST_VALUES} values.")
    return frozenset(_text(v, f"{where}[{n}]", max_length) for n, v in enumerate(value))


def _number(value: Any, where: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(where, "Must be a number.")
    value = float(value)
    if not math.isfinite(value) or value < minimum:
        raise RuleError(where, f"Must be a finite number of at least {minimum:g}.")
    return value


def _whole(value: Any, where: str, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleError(where, "A whole number is required.")
    if not minimum <= value <= maximum:
        raise RuleError(where, f"Must be between {minimum} and {maximum}.")
    return value


def _attribute_value(value: Any, where: str) -> str:
    if isinstance(value, str):
        return as_text(_text(value, where))
    if isinstance(value, bool | int | float) and not (
        isinstance(value, float) and not math.isfinite(value)
    ):
        return as_text(value)
    raise RuleError(where, "Must be a string, number or boolean (or a list of them).")


def parse_attributes(value: Any, where: str) -> tuple[tuple[str, frozenset[str]], ...]:
    attributes = _object(value, where)
    if len(attributes) > MAX_ATTRIBUTES:
        raise RuleError(where, f"At most {MAX_ATTRIBUTES} attributes.")
    out = []
    for name, wanted in sorted(attributes.items()):
        at = f"{where}.{name}"
        _text(name, at, 64)
        if isinstance(wanted, list):
            if not wanted or len(wanted) > MAX_LIST_VALUES:
                raise RuleError(at, f"Must hold 1 to {MAX_LIST_VALUES} values.")
            values = frozenset(_attribute_value(v, f"{at}[{n}]") for n, v in enumerate(wanted))
        else:
            values = frozenset({_attribute_value(wanted, at)})
        out.append((name, values))
    return tuple(out)


def parse_condition(value: Any, where: str) -> Condition:
    data = _object(value, where)
    _unknown_keys(
        data, ("categories", "price_min", "price_max", "in_stock", "attributes", "items"), where
    )
    categories = _texts(data["categories"], f"{where}.categories") if "categories" in data else None
    price_min = _number(data["price_min"], f"{where}.price_min") if "price_min" in data else None
    price_max = _number(data["price_max"], f"{where}.price_max") if "price_max" in data else None
    if price_min is not None and price_max is not None and price_min > price_max:
        raise RuleError(f"{where}.price_max", "Must be at least price_min.")
    in_stock = data.get("in_stock")
    if in_stock is not None and not isinstance(in_stock, bool):
        raise RuleError(f"{where}.in_stock", "Must be true or false.")
    attributes = (
        parse_attributes(data["attributes"], f"{where}.attributes") if "attributes" in data else ()
    )
    items = _texts(data["items"], f"{where}.items", 128) if "items" in data else None
    return Condition(categories, price_min, price_max, in_stock, attributes, items)


def parse_rules(value: Any) -> Rules:
    """Validate a rules JSON object (see the module docstring). Raises RuleError naming the
    offending key's path (e.g. `boosts[1].weight`)."""
    if value is None:
        return NO_RULES
    data = _object(value, "rules")
    _unknown_keys(
        data,
        ("filters", "exclude", "hidden", "boosts", "pins", "diversity", "rotation"),
        "",
    )
    filters = parse_condition(data["filters"], "filters") if "filters" in data else ANY_ITEM
    exclude = _texts(data["exclude"], "exclude", 128) if "exclude" in data else frozenset()
    hidden = _texts(data["hidden"], "hidden", 128) if "hidden" in data else frozenset()

    boosts = []
    raw_boosts = data.get("boosts", [])
    if not isinstance(raw_boosts, list) or len(raw_boosts) > MAX_BOOSTS:
        raise RuleError("boosts", f"Must be a list of at most {MAX_BOOSTS} boosts.")
    for n, raw in enumerate(raw_boosts):
        at = f"boosts[{n}]"
        raw = _object(raw, at)
        _unknown_keys(raw, ("when", "weight", "name"), at)
        if "when" not in raw:
            raise RuleError(f"{at}.when", "This field is required.")
        if "weight" not in raw:
            raise RuleError(f"{at}.weight", "This field is required.")
        when = parse_condition(raw["when"], f"{at}.when")
        if when.empty:
            raise RuleError(f"{at}.when", "Must name at least one condition.")
        weight = _number(raw["weight"], f"{at}.weight", minimum=0.0)
        if weight == 0 or weight > 100:
            raise RuleError(f"{at}.weight", "Must be above 0 and at most 100.")
        name = _text(raw["name"], f"{at}.name", 64) if "name" in raw else f"boost {n + 1}"
        boosts.append(Boost(when, weight, name))

    pins = []
    raw_pins = data.get("pins", [])
    if not isinstance(raw_pins, list) or len(raw_pins) > MAX_PINS:
        raise RuleError("pins", f"Must be a list of at most {MAX_PINS} pins.")
    positions: set[int] = set()
    pinned: set[str] = set()
    for n, raw in enumerate(raw_pins):
        at = f"pins[{n}]"
        raw = _object(raw, at)
        _unknown_keys(raw, ("item_id", "position"), at)
        item_id = _text(raw.get("item_id"), f"{at}.item_id", 128)
        position = _whole(raw.get("position"), f"{at}.position", minimum=1, maximum=MAX_POSITION)
        if position in positions:
            raise RuleError(f"{at}.position", "Another pin already holds this position.")
        if item_id in pinned:
            raise RuleError(f"{at}.item_id", "This item is already pinned.")
        positions.add(position)
        pinned.add(item_id)
        pins.append(Pin(item_id, position))
    pins.sort(key=lambda pin: pin.position)

    diversity = Diversity()
    if "diversity" in data:
        raw = _object(data["diversity"], "diversity")
        _unknown_keys(raw, ("max_per_category", "max_per_attribute"), "diversity")
        per_category = (
            _whole(
                raw["max_per_category"],
                "diversity.max_per_category",
                minimum=1,
                maximum=MAX_POSITION,
            )
            if "max_per_category" in raw
            else None
        )
        per_attribute = []
        caps = _object(raw.get("max_per_attribute", {}), "diversity.max_per_attribute")
        if len(caps) > MAX_ATTRIBUTES:
            raise RuleError("diversity.max_per_attribute", f"At most {MAX_ATTRIBUTES} attributes.")
        for name, cap in sorted(caps.items()):
            at = f"diversity.max_per_attribute.{name}"
            _text(name, at, 64)
            per_attribute.append((name, _whole(cap, at, minimum=1, maximum=MAX_POSITION)))
        diversity = Diversity(per_category, tuple(per_attribute))

    rotation = 0
    if "rotation" in data:
        raw = _object(data["rotation"], "rotation")
        _unknown_keys(raw, ("window_seconds",), "rotation")
        rotation = _whole(
            raw.get("window_seconds"),
            "rotation.window_seconds",
            minimum=1,
            maximum=MAX_ROTATION_SECONDS,
        )
    return Rules(filters, exclude, hidden, tuple(boosts), tuple(pins), diversity, rotation)
