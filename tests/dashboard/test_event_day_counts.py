"""The overview's events-per-day chart reads the rollup the catalog_event triggers keep
(apps.dashboard.models.EventDayCount): every way events are written or removed moves it, and
the migration's backfill counts the events older than the triggers exactly once."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog.models import Event
from apps.catalog.services import events_ingest, shopper_events_erase
from apps.dashboard.models import EventDayCount, EventDayCountState
from apps.dashboard.selectors import events_per_day
from tests.factories import EventFactory

pytestmark = pytest.mark.django_db

BACKFILL = importlib.import_module(
    "apps.dashboard.migrations.0002_event_day_counts_backfill"
).BACKFILL


def _at(days_ago: int, hour: int = 12) -> datetime:
    day = timezone.now().date() - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _series(days: int = 3) -> dict[str, list[int]]:
    """The chart's non-empty series over the last `days` days, oldest first."""
    chart = events_per_day(days=days)
    return {kind: counts for kind, counts in chart["series"].items() if any(counts)}


def test_ingested_events_are_counted_by_utc_day_and_type(alpha):
    with tenant_context(alpha):
        result = events_ingest(
            rows=[
                {"event_id": "a", "user_id": "u1", "item_id": "i1", "type": "view",
                 "timestamp": _at(2)},
                {"event_id": "b", "user_id": "u1", "item_id": "i1", "type": "view",
                 "timestamp": _at(2, hour=23)},
                {"event_id": "c", "user_id": "u2", "item_id": "i2", "type": "purchase",
                 "timestamp": _at(0, hour=0)},
                # a duplicate event_id is not stored, so not counted
                {"event_id": "a", "user_id": "u1", "item_id": "i1", "type": "view",
                 "timestamp": _at(2)},
            ],
            now=timezone.now(),
        )  # fmt: skip

        assert result.accepted == 3
        chart = events_per_day(days=3)
        assert chart["labels"] == [
            (timezone.now().date() - timedelta(days=n)).isoformat() for n in (2, 1, 0)
        ]
        assert _series() == {"view": [2, 0, 0], "purchase": [0, 0, 1]}


def test_days_outside_the_window_are_left_out(alpha):
    with tenant_context(alpha):
        EventFactory(timestamp=_at(3))
        EventFactory(timestamp=_at(30))
        EventFactory(timestamp=_at(1), type=Event.Type.CLICK)

        assert _series(days=3) == {"click": [0, 1, 0]}
        assert events_per_day(days=31)["series"]["view"][0] == 1


def test_erasure_and_updates_move_the_counts(alpha):
    with tenant_context(alpha):
        EventFactory.create_batch(3, user_id="leaving", timestamp=_at(1))
        EventFactory(user_id="staying", timestamp=_at(1))
        moved = EventFactory(user_id="staying", timestamp=_at(2))

        assert shopper_events_erase("leaving") == 3
        Event.objects.filter(pk=moved.pk).update(type=Event.Type.ADD_TO_CART, timestamp=_at(0))

        assert _series() == {"view": [0, 1, 0], "add_to_cart": [0, 0, 1]}


def test_counts_are_split_over_slots_and_summed(alpha):
    """Rows of other connections (other slots) of the same day and type add up."""
    with tenant_context(alpha):
        EventFactory(timestamp=_at(1))
        (own,) = EventDayCount.objects.values_list("slot", flat=True)
        others = [slot for slot in range(8) if slot != own]
        EventDayCount.objects.create(day=_at(1).date(), type="view", slot=others[0], count=4)
        EventDayCount.objects.create(day=_at(1).date(), type="view", slot=others[1], count=-1)

        assert _series() == {"view": [0, 4, 0]}


def test_backfill_counts_the_events_older_than_the_triggers_once(alpha):
    """As migration 0002 runs on a store that had events before 0001: events written
    without the triggers, some of them erased before the backfill, one after."""
    with tenant_context(alpha):
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE catalog_event DISABLE TRIGGER dashboard_event_days_insert")
            old = EventFactory.create_batch(4, user_id="old", timestamp=_at(1))
            EventFactory(user_id="old-erased", timestamp=_at(1))
            cursor.execute("ALTER TABLE catalog_event ENABLE TRIGGER dashboard_event_days_insert")
        EventDayCountState.objects.update(
            created_below=max(event.pk for event in Event.objects.all()), backfilled=False
        )
        EventFactory(user_id="new", timestamp=_at(1), type=Event.Type.CLICK)
        # Erased before the backfill: never added, so not subtracted either.
        shopper_events_erase("old-erased")
        assert _series() == {"click": [0, 1, 0]}

        with connection.cursor() as cursor:
            for statement in BACKFILL:
                cursor.execute(statement)
        # Erased after it: subtracted.
        Event.objects.filter(pk=old[0].pk).delete()

        assert EventDayCountState.objects.get().backfilled is True
        assert _series() == {"view": [0, 3, 0], "click": [0, 1, 0]}


def test_truncate_empties_the_rollup_and_keeps_counting(alpha):
    with tenant_context(alpha):
        EventFactory(timestamp=_at(1))
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE catalog_event, dashboard_eventdaycountstate")

        assert _series() == {}
        EventFactory(timestamp=_at(1))
        assert EventDayCountState.objects.get().backfilled is True
        assert _series() == {"view": [0, 1, 0]}


def test_overview_chart_reads_the_rollup_not_the_events(alpha, member_client):
    with tenant_context(alpha):
        EventFactory.create_batch(2, timestamp=_at(0))
    client, _ = member_client(alpha, "analyst")

    response = client.get("/")

    assert response.status_code == 200
    assert response.context["events_chart"]["series"]["view"][-1] == 2
