"""The one order in which a placement's rules (apps.merchandising.rules) apply to a list.

Pure Python (no Django, no I/O): the caller hands in the candidate list, a function that
returns catalog facts for item ids, the fallback list and what the shopper was last shown.

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
from dataclasses import dataclass
from itertools import islice

from apps.merchandising.rules import Diversity, ItemFacts, Rules, as_text

FACTS_CHUNK = 200


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


_Verdict = tuple[bool, float, tuple[str, ...]]  # (passes the hard filters, boost, boosted_by)


class Verdicts:
    """Steps 2-3 of every item already met, for one `Rules`, one `in_stock` and one version of
    the store's facts: the caller keeps one per (placement rules, in_stock) next to the facts
    it was computed from, and drops it with them (a catalog change gives new facts)."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: dict[str, _Verdict] = {}


def _verdict(
    item_id: str, item_facts: ItemFacts | None, passes: Callable, boosts: list
) -> _Verdict:
    if not passes(item_id, item_facts):
        return (False, 1.0, ())
    boost, names = 1.0, ()
    for matches, weight, name in boosts:
        if matches(item_id, item_facts):
            boost *= weight
            names += (name,)
    return (True, boost, names)


def apply(
    rules: Rules,
    candidates: Sequence[tuple[str, float]],
    *,
    k: int,
    facts: FactsLookup,
    fallback: Iterable[tuple[str, float]] = (),
    in_stock: bool = True,
    last_shown: Sequence[str] | None = None,
    verdicts: Verdicts | None = None,
) -> list[Placed]:
    """The ruled top-`k` of `candidates` in the order of operations of this module's
    docstring. `facts(ids)` returns the facts of those ids that are in the store's catalog
    (an id it leaves out is never returned); `fallback` is read lazily, only for the top-up;
    `in_stock` drops out-of-stock items (the endpoints' `in_stock` parameter) besides any
    `in_stock` condition of the rules; `last_shown` is the list last shown to this shopper
    within the rotation window (None: no rotation). `verdicts`: a memo of steps 2-3 per item
    for these very `rules`, `in_stock` and facts (see `Verdicts`), kept by the caller across
    requests; None computes every item afresh."""
    # What truncation can keep: k, one more for rotation, one per pin that may displace an
    # item. Once a list holds that many, later items could only matter for a top-up, which
    # it never needs: walks stop there.
    enough = k + 1 + len(rules.pins)
    caps = _Caps(rules.diversity)
    # Without boosts the candidate order is final, so steps 2 and 5 run in one early-ending pass.
    in_order = not rules.boosts

    # 1-3. candidates, hard filters, boost / bury: a verdict per item (facts read by chunk,
    # only for the items without a verdict yet and for the caps, as the walk may end early)
    passes = _hard_filter(rules, in_stock)
    boosts = [(boost.when.predicate, boost.weight, boost.name) for boost in rules.boosts]
    memo: dict[str, _Verdict] = verdicts.items if verdicts is not None else {}
    step = max(2 * enough, 32) if in_order else max(len(candidates), 1)
    known: dict[str, ItemFacts] = {}
    seen: set[str] = set()
    # (score after boosts, item, boost, boosted_by), in candidate order
    walked: list[tuple[float, str, float, tuple[str, ...]]] = []
    full = False
    for start in range(0, len(candidates), step):
        chunk = candidates[start : start + step]
        wanted = [item for item, _ in chunk if caps.active or item not in memo]
        if wanted:
            known.update(facts(wanted))
        for item, score in chunk:
            if item in seen:
                continue
            seen.add(item)
            verdict = memo.get(item)
            if verdict is None:
                verdict = memo[item] = _verdict(item, known.get(item), passes, boosts)
            if not verdict[0]:
                continue
            if in_order and caps.active and not caps.admit(known[item]):
                continue
            boost = verdict[1]
            value = float(score)
            if boost != 1.0:
                value = value * boost if value >= 0 else value / boost
            walked.append((value, item, boost, verdict[2]))
            if in_order and len(walked) >= enough:
                full = True
                break
        if full:
            break

    if not in_order:
        # 4. re-sort (stable: ties keep candidate order)
        walked.sort(key=lambda row: -row[0])
        # 5. diversity caps
        if caps.active:
            admitted = []
            for row in walked:
                if caps.admit(known[row[1]]):
                    admitted.append(row)
                    if len(admitted) >= enough:
                        break
            walked = admitted
    kept = [
        Placed(item, value, "candidate", boost=boost, boosted_by=names)
        for value, item, boost, names in walked
    ]

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
