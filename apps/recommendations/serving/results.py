"""What a serving call returns (`Served`), the filters a client asks for, how ranked lists are
filtered against the store's catalog, and how a served list is logged as an impression."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from apps.core.ids import random_id
from apps.recommendations.impressions import impression_log
from apps.recommendations.serving.state import (
    NO_MODEL,
    Arm,
    CatalogState,
    _category_items,
)


@dataclass
class Served:
    """A served list. `ranked`: the (items, reasons) list it was cut from, as cached with its
    reasons (ml.explain.ListReasons.encoded's compact form), for explanations; None when that
    list carries none (popularity fallbacks, cold-start lists)."""

    recommendation_id: str
    model_version: str
    strategy: str
    items: list[tuple[str, float]]
    ranked: tuple[list, list] | None = None

    def stored_reasons(self) -> dict[str, list]:
        """Item id → its stored reason (empty without any); built on demand, off the hot path."""
        if self.ranked is None:
            return {}
        items, reasons = self.ranked
        return {item[0]: reason for item, reason in zip(items, reasons, strict=False)}

    def as_dict(self) -> dict[str, object]:
        return {
            "recommendation_id": self.recommendation_id,
            "model_version": self.model_version,
            "strategy": self.strategy,
            "items": [{"item_id": item, "score": score} for item, score in self.items],
        }

    def json(self) -> bytes:
        return orjson.dumps(self.as_dict())


@dataclass
class Filters:
    k: int = 10
    category: str | None = None
    in_stock: bool = True


def _filtered(
    lists: list[list[tuple[str, float]]],
    catalog: CatalogState,
    filters: Filters,
    exclude: frozenset[str] | set[str] = frozenset(),
) -> list[tuple[str, float]]:
    """The first `k` items of `lists` (in order, no repeats) that pass the filters. Items of a
    later list are scored below the last kept one, so scores keep decreasing; a list that
    starts the answer (the earlier ones gave nothing) keeps its own scores."""
    hidden = catalog.hidden
    oos = catalog.out_of_stock if filters.in_stock else frozenset()
    in_category = _category_items(catalog, filters.category) if filters.category else None
    out: list[tuple[str, float]] = []
    taken: set[str] = set()
    k = filters.k
    for items in lists:
        below = bool(out)
        floor = out[-1][1] if out else 0.0
        for item, score in items:
            if (
                item in hidden
                or item in oos
                or item in exclude
                or item in taken
                or (in_category is not None and item not in in_category)
            ):
                continue
            if below:
                floor -= 0.001
                score = floor
            out.append((item, round(float(score), 6)))
            taken.add(item)
            if len(out) >= k:
                return out
    return out


def _new_id() -> str:
    return random_id()


def _log(
    schema_name: str,
    served: Served,
    surface: str,
    user_id: str,
    arm: Arm | None,
    *,
    session_id: str = "",
) -> None:
    """Log the served list; a session's list carries its session, so that only that session's
    clicks and purchases are attributed to it."""
    impression_log(
        schema_name=schema_name,
        recommendation_id=served.recommendation_id,
        surface=surface,
        user_id=user_id,
        model_version_number=arm.number
        if arm is not None and served.model_version != NO_MODEL
        else None,
        strategy=served.strategy,
        item_ids=[item for item, _ in served.items],
        experiment_id=arm.experiment_id if arm is not None else None,
        arm_id=arm.arm_id if arm is not None else None,
        session_id=session_id,
    )
