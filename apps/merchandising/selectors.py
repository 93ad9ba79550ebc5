"""Reads of placements (the current store's schema)."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.core.errors import ApplicationError
from apps.merchandising.models import Placement


def placement_list() -> QuerySet[Placement]:
    return Placement.objects.order_by("name")


def placement_get(*, name: str) -> Placement:
    """The placement `name`. Raises ApplicationError 404 when the store has none of that name."""
    placement = Placement.objects.filter(name=name).first()
    if placement is None:
        raise ApplicationError(
            f"No placement {name!r} in this store.", code="not_found", status_code=404
        )
    return placement
