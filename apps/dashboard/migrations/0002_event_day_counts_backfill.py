"""Count the events written before 0001's triggers existed. A read of catalog_event (seconds
for millions of events) that blocks no ingestion: only deletes and updates of events wait, on
the state row, until it commits."""

from django.db import migrations

BACKFILL = [
    # First, in its own statement: take the state row. Deletes committed before this are not
    # seen by the next statement's snapshot; later ones wait and then see `backfilled`.
    "UPDATE dashboard_eventdaycountstate SET backfilled = true",
    "INSERT INTO dashboard_eventdaycount (day, type, slot, count) "
    "SELECT (e.\"timestamp\" AT TIME ZONE 'UTC')::date, e.type, 0, count(*) "
    "FROM catalog_event e "
    "WHERE e.id <= (SELECT created_below FROM dashboard_eventdaycountstate) "
    "GROUP BY 1, 2 ORDER BY 1, 2 "
    "ON CONFLICT (day, type, slot) "
    "DO UPDATE SET count = dashboard_eventdaycount.count + EXCLUDED.count",
]


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0001_event_day_counts"),
    ]

    operations = [migrations.RunSQL(BACKFILL, migrations.RunSQL.noop)]
