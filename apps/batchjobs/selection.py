"""Which shoppers a job lists: the ids it was given, a K-Means segment of the active model
(`RecommenderModel.segment_of`; segments are fitted with every training, ml/candidates/
segments.py), or everyone active in the last N days."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from django.db import connection
from django.utils import timezone

from apps.catalog.models import Shopper
from apps.core.errors import ApplicationError
from apps.recommendations.model_store import LoadedModel
from apps.recommendations.serving.state import serving_model, store_state


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(f"Invalid input in: {field}.", fields={field: [message]})


def active_model() -> LoadedModel | None:
    """The store's active model (the one serving shoppers outside experiments), or None."""
    schema = connection.schema_name
    return serving_model(schema, store_state(schema).default)


def segment_count(loaded: LoadedModel | None) -> int:
    return 0 if loaded is None else len(loaded.model.arrays["segment_centers"])


def segment_check(segment: int) -> None:
    """Raise ApplicationError 400 naming `segment` unless the active model has it."""
    count = segment_count(active_model())
    if count == 0:
        raise _invalid("segment", "The store has no active model with segments.")
    if not 0 <= segment < count:
        raise _invalid("segment", f"The active model has segments 0 to {count - 1}.")


def segment_shoppers(segment: int) -> list[str]:
    """Shoppers of `segment` in the active model, in the model's order. ApplicationError when
    the segment is gone (the active model changed since the job was accepted)."""
    loaded = active_model()
    if not 0 <= segment < segment_count(loaded):
        raise ApplicationError(
            f"The active model has no segment {segment}.", code="segment_gone", status_code=409
        )
    model = loaded.model
    rows = np.flatnonzero(model.arrays["user_segment"] == segment)
    return model.user_index.ids[rows].tolist()


def active_shoppers(days: int) -> list[str]:
    """Shoppers whose last event is at most `days` days old, oldest shopper first."""
    since = timezone.now() - timedelta(days=days)
    return list(
        Shopper.objects.filter(last_seen_at__gte=since)
        .order_by("id")
        .values_list("user_id", flat=True)
    )
