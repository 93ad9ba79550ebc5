"""Reads of a store's catalog, shoppers and events (current connection schema)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import QuerySet
from django.db.models.functions import Length
from django.utils import timezone

from apps.catalog.models import Event, Item, Shopper
from apps.core.cache import redis_client, tenant_key
from apps.core.erasure import shopper_export
from apps.core.errors import ApplicationError

ITEM_PUBLIC_FIELDS = (
    "item_id",
    "title",
    "description",
    "categories",
    "price",
    "in_stock",
    "attributes",
    "created_at",
    "updated_at",
)
EVENT_PUBLIC_FIELDS = (
    "event_id",
    "user_id",
    "item_id",
    "type",
    "value",
    "timestamp",
    "recommendation_id",
    "session_id",
    "order_id",
    "received_at",
)


def item_list(*, category: str | None = None, in_stock: bool | None = None) -> QuerySet[Item]:
    """Visible items (not deleted, not event-created stubs), optionally filtered."""
    items = Item.objects.listed()
    if category is not None:
        items = items.filter(categories__contains=[category])
    if in_stock is not None:
        items = items.filter(in_stock=in_stock)
    return items


def item_get(*, item_id: str) -> Item:
    item = Item.objects.listed().filter(item_id=item_id).first()
    if item is None:
        raise ApplicationError("No such item.", code="not_found", status_code=404)
    return item


def shopper_events(*, user_id: str) -> QuerySet[Event]:
    """The shopper's events, most recent first (index event_user_time)."""
    return Event.objects.filter(user_id=user_id).order_by("-timestamp", "-id")


def shopper_data(*, user_id: str) -> dict[str, Any] | None:
    """Everything held about a shopper, or None when nothing is: the profile, every event
    (oldest first) and the cached recommendation lists by Redis key."""
    shopper = Shopper.objects.filter(user_id=user_id).first()
    events = list(
        Event.objects.filter(user_id=user_id)
        .order_by("timestamp", "id")
        .values(*EVENT_PUBLIC_FIELDS)
    )
    # What other apps hold about the shopper (the recommendations app: its cached lists).
    held = shopper_export(user_id)
    if shopper is None and not events and not any(held.values()):
        return None
    profile = None
    if shopper is not None:
        profile = {
            "user_id": shopper.user_id,
            "attributes": shopper.attributes,
            "first_seen_at": shopper.first_seen_at,
            "last_seen_at": shopper.last_seen_at,
            "created_at": shopper.created_at,
            "updated_at": shopper.updated_at,
        }
    return {
        "user_id": user_id,
        "profile": profile,
        "events": events,
        **held,
    }


def counters_key(day: date, *, schema_name: str | None = None) -> str:
    """The Redis hash of a store's live event counters of one UTC day (field = event type)."""
    return tenant_key("counters", day.isoformat(), schema_name=schema_name)


def event_counters(*, day: date | None = None) -> dict[str, int]:
    """Events accepted by this store on `day` (UTC, default today), by type."""
    day = day or timezone.now().date()
    raw = redis_client().hgetall(counters_key(day))
    return {field.decode(): int(value) for field, value in raw.items()}


# Ids that may break the id rule: anything beyond printable ASCII, edge spaces, over-length.
_SUSPECT_ID_SQL = r"[^ -~]|^ | $"


def ids_breaking_rule() -> list[tuple[str, str, str]]:
    """(kind, id, why) for every stored item, shopper and event id of this store that breaks
    the id rule of apps.core.ids (stored before the rule; they stay reachable). PostgreSQL
    narrows the rows down; the rule itself decides."""
    from apps.core.ids import ID_MAX_LENGTH, id_normalize, id_problem

    def suspects(queryset, column: str) -> set[str]:
        odd = queryset.filter(**{f"{column}__regex": _SUSPECT_ID_SQL})
        long = queryset.annotate(id_length=Length(column)).filter(id_length__gt=ID_MAX_LENGTH)
        return {
            *odd.values_list(column, flat=True).distinct(),
            *long.values_list(column, flat=True).distinct(),
        }

    sources = [
        ("item", Item.objects.all(), "item_id"),
        ("shopper", Shopper.objects.all(), "user_id"),
        ("event user_id", Event.objects.all(), "user_id"),
        ("event item_id", Event.objects.all(), "item_id"),
    ]
    found = []
    for kind, queryset, column in sources:
        for value in sorted(suspects(queryset, column)):
            if value != id_normalize(value):
                found.append((kind, value, "Not in Unicode NFC form."))
            elif message := id_problem(value):
                found.append((kind, value, message))
    return found
