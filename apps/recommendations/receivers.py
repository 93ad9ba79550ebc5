"""What the recommendations app does when other apps announce something (connected in
RecommendationsConfig.ready)."""

from __future__ import annotations

from typing import Any

from apps.recommendations.cache import catalog_changed
from apps.recommendations.services import training_schedule_ensure


def on_items_changed(*, schema_name: str, **kwargs: Any) -> None:
    """apps.catalog.signals.items_changed (after commit): serving processes reload the store's
    hidden / out-of-stock / category filters."""
    catalog_changed(schema_name)


def on_store_ready(**kwargs: Any) -> None:
    """apps.tenants.signals.store_ready (in the store's schema): the store's own nightly
    training schedule (one row per store, spread over the night)."""
    training_schedule_ensure()
