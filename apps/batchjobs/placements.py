"""A job's placement, through the merchandising app's entry point (`apps.merchandising.placing`,
issue 16 item 1) when this deployment has it."""

from __future__ import annotations

import importlib
from typing import Any

from apps.core.errors import ApplicationError

PERSONAL_SCENARIO = "personal"


def _placing() -> Any | None:
    try:
        return importlib.import_module("apps.merchandising.placing")
    except ImportError:
        return None


def placement_resolve(name: str) -> Any:
    """The compiled placement `name` of the current store, for the personal scenario. Raises
    ApplicationError 400 naming `placement` when it does not exist, has another scenario, or
    placements are not available in this deployment."""
    placing = _placing()
    if placing is None:
        raise ApplicationError(
            "Invalid input in: placement.",
            fields={"placement": ["Placements are not available in this deployment."]},
        )
    return placing.placement_get(name=name, scenario=PERSONAL_SCENARIO)


def placement_apply(
    compiled: Any, *, candidates: list[tuple[str, float]], k: int
) -> list[tuple[str, float]]:
    """The placement's rules over the shopper's ranked candidates: at most k items, in stock.
    No rotation state (a batch is not a showing) and no explanations."""
    placed = _placing().placement_apply(
        placement=compiled, candidates=candidates, k=k, in_stock=True
    )
    return list(placed.items)
