"""Migration catalog.0009: event-created items stored before it (hidden) become stubs; items
deleted through the API stay hidden."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog.models import Item

pytestmark = pytest.mark.django_db

migration = importlib.import_module("apps.catalog.migrations.0009_item_is_stub")


def test_old_event_stubs_become_stubs_and_deleted_items_stay_hidden(alpha):
    created = timezone.now() - timedelta(days=3)
    with tenant_context(alpha):
        # as the previous release stored them
        Item.objects.bulk_create(
            [
                # an event's stub: id only, hidden, never updated
                Item(item_id="from-event", is_hidden=True),
                # a stub the store then deleted (the delete updated it)
                Item(item_id="event-then-deleted", is_hidden=True),
                # a catalog item deleted through the API
                Item(item_id="deleted", title="Mug", is_hidden=True),
                Item(item_id="listed", title="Cup"),
            ]
        )
        Item.objects.update(created_at=created, updated_at=created)
        Item.objects.filter(item_id__in=["event-then-deleted", "deleted"]).update(
            updated_at=created + timedelta(hours=1)
        )

        with connection.cursor() as cursor:
            cursor.execute(migration.STUBS_FROM_HIDDEN)
        states = dict(
            (item_id, (hidden, stub))
            for item_id, hidden, stub in Item.objects.exclude(item_id="alpha-only").values_list(
                "item_id", "is_hidden", "is_stub"
            )
        )

    assert states == {
        "from-event": (False, True),
        "event-then-deleted": (True, False),
        "deleted": (True, False),
        "listed": (False, False),
    }
