"""Placement rules: what they are, and the one order in which they apply.

Pure Python (no Django, no I/O): the caller hands in the candidate list, a function that
returns catalog facts for item ids, the fallback list and what the shopper was last shown.

Their JSON form and its validation: `apps.merchandising.rules_json`.

The order of operations, the only one (`apply`):

1. candidates: the scenario's ranked list, best first (duplicates keep their first place);
2. hard filters: unknown items (not in this store's catalog), hidden items (the catalog's and
   the rules' `hidden`), out of stock (when `in_stock`), `exclude`, and the `filters`
   condition remove items;
3. boost / bury: each matching boost multiplies the score by its weight (a negative score is
   divided instead, so a weight above 1 always moves an item up);
4. re-sort by score (stable: ties keep candidate order);
5. diversity caps: walking down the list, an item whose primary (first) category, or whose
   value of a capped attribute, already has its maximum is dropped;
6. pins: each pinned item that passes the hard filters is moved (or inserted) at its 1-based
   position, lowest position first; a filtered-out pin is skipped; pins do not count against
   the caps;
7. rotation: when the list would start exactly like the list last shown to this shopper (in
   the rotation window), its unpinned items rotate by one (the first goes last), so the
   same list is never shown twice in a row;
8. top-up: while fewer than `k` items remain, items of the fallback list (the scenario's
   popularity) that pass the same hard filters and caps are appended, scored below the last;
9. truncate to `k`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from typing import Any

FACTS_CHUNK = 200


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


# --- application ---------------------------------------------------------------------------------
@dataclass
class Placed:
    """One item of a ruled list and what put it there."""

    item_id: str
    score: float
    origin: str  # "candidate" | "fallback" | "pin"
    position: int = 0  # the pin's position (origin "pin")
    boost: float = 1.0  # product of the weights of the boosts that matched
    boosted_by: tuple[str, ...] = ()  # their names


FactsLookup = Callable[[Sequence[str]], Mapping[str, ItemFacts]]


class _Caps:
    """Diversity counters of the list being built."""

    __slots__ = ("active", "attributes", "counts", "per_category")

    def __init__(self, diversity: Diversity) -> None:
        self.active = diversity.active
        self.per_category = diversity.max_per_category
        self.attributes = diversity.max_per_attribute
        self.counts: dict[tuple[str, str], int] = {}

    def admit(self, facts: ItemFacts) -> bool:
        """Count the item and return True, or False when one of its caps is full."""
        if not self.active:
            return True
        keys: list[tuple[tuple[str, str], int]] = []
        if self.per_category is not None and facts.categories:
            keys.append((("", facts.categories[0]), self.per_category))
        for name, cap in self.attributes:
            value = facts.attributes.get(name)
            if value is not None:
                keys.append(((name, as_text(value)), cap))
        counts = self.counts
        for key, cap in keys:
            if counts.get(key, 0) >= cap:
                return False
        for key, _ in keys:
            counts[key] = counts.get(key, 0) + 1
        return True


def _hard_filter(rules: Rules, in_stock: bool) -> Callable[[str, ItemFacts | None], bool]:
    """The hard filters (step 2) as one predicate; facts None: not in the store's catalog."""
    hidden, exclude = rules.hidden, rules.exclude
    condition = None if rules.filters.empty else rules.filters.predicate

    def passes(item_id: str, facts: ItemFacts | None) -> bool:
        return (
            facts is not None
            and not facts.hidden
            and (facts.in_stock or not in_stock)
            and item_id not in hidden
            and item_id not in exclude
            and (condition is None or condition(item_id, facts))
        )

    return passes


def apply(
    rules: Rules,
    candidates: Sequence[tuple[str, float]],
    *,
    k: int,
    facts: FactsLookup,
    fallback: Iterable[tuple[str, float]] = (),
    in_stock: bool = True,
    last_shown: Sequence[str] | None = None,
) -> list[Placed]:
    """The ruled top-`k` of `candidates` in the order of operations of this module's
    docstring. `facts(ids)` returns the facts of those ids that are in the store's catalog
    (an id it leaves out is never returned); `fallback` is read lazily, only for the top-up;
    `in_stock` drops out-of-stock items (the endpoints' `in_stock` parameter) besides any
    `in_stock` condition of the rules; `last_shown` is the list last shown to this shopper
    within the rotation window (None: no rotation)."""
    # What truncation can keep: k, one more for rotation, one per pin that may displace an
    # item. Once a list holds that many, later items could only matter for a top-up, which
    # it never needs: walks stop there.
    enough = k + 1 + len(rules.pins)
    caps = _Caps(rules.diversity)
    # Without boosts the candidate order is final, so steps 2 and 5 run in one early-ending pass.
    in_order = not rules.boosts

    # 1-2. candidates, hard filters (facts read by chunk when the walk may end early)
    passes = _hard_filter(rules, in_stock)
    step = max(2 * enough, 32) if in_order else max(len(candidates), 1)
    known: dict[str, ItemFacts] = {}
    seen: set[str] = set()
    kept: list[Placed] = []
    full = False
    for start in range(0, len(candidates), step):
        chunk = candidates[start : start + step]
        known.update(facts([item for item, _ in chunk]))
        for item, score in chunk:
            if item in seen:
                continue
            seen.add(item)
            item_facts = known.get(item)
            if not passes(item, item_facts):
                continue
            if in_order and caps.active and not caps.admit(item_facts):
                continue
            kept.append(Placed(item, float(score), "candidate"))
            if in_order and len(kept) >= enough:
                full = True
                break
        if full:
            break

    if not in_order:
        # 3-4. boost / bury, re-sort
        boosts = [(boost.when.predicate, boost.weight, boost.name) for boost in rules.boosts]
        for placed in kept:
            item_id = placed.item_id
            item_facts = known[item_id]
            for matches, weight, name in boosts:
                if matches(item_id, item_facts):
                    placed.boost *= weight
                    placed.boosted_by += (name,)
            if placed.boost != 1.0:
                s = placed.score
                placed.score = s * placed.boost if s >= 0 else s / placed.boost
        kept.sort(key=lambda placed: -placed.score)

        # 5. diversity caps
        if caps.active:
            admitted: list[Placed] = []
            for placed in kept:
                if caps.admit(known[placed.item_id]):
                    admitted.append(placed)
                    if len(admitted) >= enough:
                        break
            kept = admitted

    # 6. pins (they obey the hard filters, not the caps)
    if rules.pins:
        pin_facts = facts([pin.item_id for pin in rules.pins])
        for pin in rules.pins:
            if not passes(pin.item_id, pin_facts.get(pin.item_id)):
                continue
            kept = [placed for placed in kept if placed.item_id != pin.item_id]
            index = min(pin.position - 1, len(kept))
            score = kept[index].score if index < len(kept) else (kept[-1].score if kept else 0.0)
            kept.insert(index, Placed(pin.item_id, score, "pin", position=pin.position))

    # 7. rotation
    if last_shown and kept:
        head = [placed.item_id for placed in kept[:k]]
        free = [placed for placed in kept if placed.origin != "pin"]
        if head == list(last_shown[: len(head)]) and len(free) > 1:
            pins = [placed for placed in kept if placed.origin == "pin"]
            kept = free[1:] + free[:1]
            for pin in pins:  # already in position order
                kept.insert(min(pin.position - 1, len(kept)), pin)

    # 8. top-up from the fallback, within the same hard filters and caps
    if len(kept) < k:
        taken = {placed.item_id for placed in kept}
        floor = kept[-1].score if kept else 0.0
        fallback_iter = iter(fallback)
        while len(kept) < k:
            chunk = list(islice(fallback_iter, FACTS_CHUNK))
            if not chunk:
                break
            chunk_facts = facts([item for item, _ in chunk if item not in taken])
            for item, _ in chunk:
                if item in taken:
                    continue
                item_facts = chunk_facts.get(item)
                if not passes(item, item_facts) or not caps.admit(item_facts):
                    continue
                floor = round(floor - 0.001, 6)
                kept.append(Placed(item, floor, "fallback"))
                taken.add(item)
                if len(kept) >= k:
                    break

    # 9. truncate
    del kept[k:]
    for placed in kept:
        placed.score = round(placed.score, 6)
    return kept
