"""The events-per-day rollup of the overview's chart (EventDayCount), kept by triggers on
catalog_event. Created together with the triggers under the lock CREATE TRIGGER takes (no
event is written meanwhile), so the state row's `created_below` splits the events in two:
those older are counted once by 0002's backfill, every later one by the triggers."""

from django.db import migrations, models

# Slots a (day, type) is split over: concurrent writers of one store (one per connection)
# rarely share a row lock (models.EventDayCount).
SLOTS = 8
DAY = "(e.\"timestamp\" AT TIME ZONE 'UTC')::date"
UPSERT = (
    "INSERT INTO dashboard_eventdaycount (day, type, slot, count) {select} "
    "ON CONFLICT (day, type, slot) "
    "DO UPDATE SET count = dashboard_eventdaycount.count + EXCLUDED.count;"
)


def _delta(table: str, sign: str, counted_only: bool) -> str:
    """The upsert of one transition table's rows: +1 or -1 per row, per (day, type), in a
    fixed order (two writers sharing a slot lock its rows in the same order: no deadlock).
    `counted_only`: only events the rollup holds (see EventDayCountState)."""
    # No state row (a TRUNCATE of both tables, as a test flush does): everything is counted.
    where = " WHERE coalesce(state.backfilled, true) OR e.id > state.created_below"
    where = where if counted_only else ""
    select = (
        f"SELECT {DAY}, e.type, mod(pg_backend_pid(), {SLOTS}), {sign}count(*) "
        f"FROM {table} e{where} GROUP BY 1, 2 ORDER BY 1, 2"
    )
    return UPSERT.format(select=select)


# `SET search_path FROM CURRENT`: a function always writes to its own store's rollup,
# whatever the search path of the connection that writes events.
FUNCTION = """
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $body$
DECLARE state record;
BEGIN
    {body}
    RETURN NULL;
END
$body$
"""
# Deletes and updates read the state row FOR SHARE: they wait while 0002 backfills (it holds
# the row), so an event is never both skipped here and missed by the backfill.
STATE = "SELECT created_below, backfilled INTO state FROM dashboard_eventdaycountstate FOR SHARE; "
FUNCTIONS = {
    "dashboard_event_days_insert": _delta("added", "", counted_only=False),
    "dashboard_event_days_delete": STATE + _delta("removed", "-", counted_only=True),
    "dashboard_event_days_update": STATE
    + _delta("removed", "-", counted_only=True)
    + _delta("added", "", counted_only=True),
    "dashboard_event_days_truncate": (
        "DELETE FROM dashboard_eventdaycount; DELETE FROM dashboard_eventdaycountstate; "
        "INSERT INTO dashboard_eventdaycountstate (created_below, backfilled) VALUES (0, true);"
    ),
}
TRIGGERS = {
    "dashboard_event_days_insert": "AFTER INSERT ON catalog_event "
    "REFERENCING NEW TABLE AS added FOR EACH STATEMENT",
    "dashboard_event_days_delete": "AFTER DELETE ON catalog_event "
    "REFERENCING OLD TABLE AS removed FOR EACH STATEMENT",
    "dashboard_event_days_update": "AFTER UPDATE ON catalog_event "
    "REFERENCING OLD TABLE AS removed NEW TABLE AS added FOR EACH STATEMENT",
    "dashboard_event_days_truncate": "AFTER TRUNCATE ON catalog_event FOR EACH STATEMENT",
}
CREATE = [
    *(FUNCTION.format(name=name, body=body) for name, body in FUNCTIONS.items()),
    *(
        f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION {name}()"
        for name, when in TRIGGERS.items()
    ),
    # Under CREATE TRIGGER's lock: no event is being written, so every later one has a
    # higher id and is seen by the triggers.
    "INSERT INTO dashboard_eventdaycountstate (created_below, backfilled) "
    "SELECT coalesce(max(id), 0), false FROM catalog_event",
]
DROP = [
    *(f"DROP TRIGGER IF EXISTS {name} ON catalog_event" for name in TRIGGERS),
    *(f"DROP FUNCTION IF EXISTS {name}()" for name in FUNCTIONS),
]



class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("catalog", "0007_event_refund_and_order_line_unique"),
    ]

    operations = [
        migrations.CreateModel(
            name='EventDayCountState',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_below', models.BigIntegerField()),
                ('backfilled', models.BooleanField(default=False)),
            ],
        ),
        migrations.CreateModel(
            name='EventDayCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('type', models.CharField(max_length=16)),
                ('slot', models.SmallIntegerField()),
                ('count', models.BigIntegerField()),
            ],
            options={
                'ordering': ['day', 'type', 'slot'],
                'constraints': [models.UniqueConstraint(fields=('day', 'type', 'slot'), name='eventdaycount_unique_day_type_slot')],
            },
        ),
        migrations.RunSQL(CREATE, DROP),
    ]
