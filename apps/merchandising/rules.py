"""Placement rules: what they are (conditions, boosts, pins, diversity, rotation) and how a
placement's rules are narrowed by a request's.

Pure Python (no Django, no I/O). The one order in which they apply: `apps.merchandising.ordering`.
Their JSON form and its validation: `apps.merchandising.rules_json`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class ItemFacts:
    """What rules read about a catalog item."""

    categories: tuple[str, ...] = ()
    price: float | None = None
    in_stock: bool = True
    hidden: bool = False
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def primary_category(self) -> str | None:
        return self.categories[0] if self.categories else None


def as_text(value: Any) -> str:
    """The text a rule value or item attribute value compares as."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        low = value.strip()
        return low.lower() if low.lower() in ("true", "false") else low
    return str(value)


@dataclass(frozen=True)
class Condition:
    categories: frozenset[str] | None = None
    price_min: float | None = None
    price_max: float | None = None
    in_stock: bool | None = None
    attributes: tuple[tuple[str, frozenset[str]], ...] = ()
    items: frozenset[str] | None = None

    @property
    def empty(self) -> bool:
        return self == ANY_ITEM

    def matches(self, item_id: str, facts: ItemFacts) -> bool:
        return self.predicate(item_id, facts)

    @cached_property
    def predicate(self) -> Callable[[str, ItemFacts], bool]:
        """`matches` compiled once: a chain of only the checks this condition names (rules
        run on every served list, so each skipped test counts)."""
        checks: list[Callable[[str, ItemFacts], bool]] = []
        if self.items is not None:
            items = self.items
            checks.append(lambda item_id, facts: item_id in items)
        if self.categories is not None:
            categories = self.categories
            checks.append(lambda item_id, facts: not categories.isdisjoint(facts.categories))
        if self.price_min is not None:
            low = self.price_min
            checks.append(lambda item_id, facts: facts.price is not None and facts.price >= low)
        if self.price_max is not None:
            high = self.price_max
            checks.append(lambda item_id, facts: facts.price is not None and facts.price <= high)
        if self.in_stock is not None:
            wanted = self.in_stock
            checks.append(lambda item_id, facts: facts.in_stock == wanted)
        for name, allowed in self.attributes:
            checks.append(_attribute_check(name, allowed))
        if not checks:
            return lambda item_id, facts: True
        if len(checks) == 1:
            return checks[0]
        return lambda item_id, facts: all(check(item_id, facts) for check in checks)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.categories is not None:
            out["categories"] = sorted(self.categories)
        if self.price_min is not None:
            out["price_min"] = self.price_min
        if self.price_max is not None:
            out["price_max"] = self.price_max
        if self.in_stock is not None:
            out["in_stock"] = self.in_stock
        if self.attributes:
            out["attributes"] = {name: sorted(values) for name, values in self.attributes}
        if self.items is not None:
            out["items"] = sorted(self.items)
        return out


ANY_ITEM = Condition()  # the condition every item matches: no filter


def _attribute_check(name: str, allowed: frozenset[str]) -> Callable[[str, ItemFacts], bool]:
    def check(item_id: str, facts: ItemFacts) -> bool:
        value = facts.attributes.get(name)
        if value is None:
            return False
        if isinstance(value, list):
            return any(as_text(v) in allowed for v in value)
        return as_text(value) in allowed

    return check


def both(a: Condition, b: Condition) -> Condition:
    """A condition matching what both match (per-request rules narrow a placement's)."""

    def meet(x, y):
        if x is None:
            return y
        if y is None:
            return x
        return x & y

    def bound(x, y, pick):
        return x if y is None else y if x is None else pick(x, y)

    if a.in_stock is not None and b.in_stock is not None and a.in_stock != b.in_stock:
        # Nothing is both in and out of stock.
        return Condition(items=frozenset())
    return Condition(
        categories=meet(a.categories, b.categories),
        price_min=bound(a.price_min, b.price_min, max),
        price_max=bound(a.price_max, b.price_max, min),
        in_stock=a.in_stock if a.in_stock is not None else b.in_stock,
        attributes=a.attributes + b.attributes,
        items=meet(a.items, b.items),
    )


@dataclass(frozen=True)
class Boost:
    when: Condition
    weight: float
    name: str


@dataclass(frozen=True)
class Pin:
    item_id: str
    position: int  # 1-based


@dataclass(frozen=True)
class Diversity:
    max_per_category: int | None = None
    max_per_attribute: tuple[tuple[str, int], ...] = ()

    @property
    def active(self) -> bool:
        return self.max_per_category is not None or bool(self.max_per_attribute)


@dataclass(frozen=True)
class Rules:
    filters: Condition = ANY_ITEM
    exclude: frozenset[str] = frozenset()
    hidden: frozenset[str] = frozenset()
    boosts: tuple[Boost, ...] = ()
    pins: tuple[Pin, ...] = ()
    diversity: Diversity = Diversity()
    rotation_seconds: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The canonical JSON form (what is stored and what the API returns)."""
        out: dict[str, Any] = {}
        if not self.filters.empty:
            out["filters"] = self.filters.as_dict()
        if self.exclude:
            out["exclude"] = sorted(self.exclude)
        if self.hidden:
            out["hidden"] = sorted(self.hidden)
        if self.boosts:
            out["boosts"] = [
                {"when": b.when.as_dict(), "weight": b.weight, "name": b.name} for b in self.boosts
            ]
        if self.pins:
            out["pins"] = [{"item_id": p.item_id, "position": p.position} for p in self.pins]
        if self.diversity.active:
            diversity: dict[str, Any] = {}
            if self.diversity.max_per_category is not None:
                diversity["max_per_category"] = self.diversity.max_per_category
            if self.diversity.max_per_attribute:
                diversity["max_per_attribute"] = dict(self.diversity.max_per_attribute)
            out["diversity"] = diversity
        if self.rotation_seconds:
            out["rotation"] = {"window_seconds": self.rotation_seconds}
        return out


NO_RULES = Rules()


def combined(placement: Rules, request: Rules) -> Rules:
    """A placement's rules narrowed by a request's (filters, exclude and hidden only)."""
    if request == NO_RULES:
        return placement
    return Rules(
        filters=both(placement.filters, request.filters),
        exclude=placement.exclude | request.exclude,
        hidden=placement.hidden | request.hidden,
        boosts=placement.boosts,
        pins=placement.pins,
        diversity=placement.diversity,
        rotation_seconds=placement.rotation_seconds,
    )
