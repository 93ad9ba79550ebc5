"""What the dashboard keeps of its own: a rollup of the store's events per UTC day and type, so
the overview's chart reads a few hundred rows instead of a month of events."""

from django.db import models


class EventDayCount(models.Model):
    """Events per (UTC day of their timestamp, type), maintained by PostgreSQL triggers on
    catalog_event (migrations 0001/0002): every insert, delete and truncate of events, by any
    writer (ingestion, imports, erasure, tests), adjusts it in the same transaction.

    A day and type is split over `slot`s (the writing connection's pid modulo
    EVENT_DAY_SLOTS) so that concurrent ingestion batches of one store add to different rows
    instead of queueing on one row lock until commit; readers sum the slots."""

    day = models.DateField()
    type = models.CharField(max_length=16)
    slot = models.SmallIntegerField()
    count = models.BigIntegerField()

    class Meta:
        ordering = ["day", "type", "slot"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "type", "slot"], name="eventdaycount_unique_day_type_slot"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.type}[{self.slot}]: {self.count}"


class EventDayCountState(models.Model):
    """One row: the newest event id when the triggers were created (`created_below`), and
    whether the events older than that have been counted (`backfilled`). Until they are, a
    delete of such an event is not subtracted (it was never added)."""

    created_below = models.BigIntegerField()
    backfilled = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"events <= {self.created_below} backfilled: {self.backfilled}"
