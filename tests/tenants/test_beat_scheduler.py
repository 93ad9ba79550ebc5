"""Celery beat's real database scheduler, after it reloads its schedule from the database,
sends every periodic task with the schema it must run in: the all-stores entries once per
store with that store's schema, the public ones with public, and each store's nightly training
with its own store's schema. Messages are read back from the real broker. Its cost does not
grow with the stores: one query a tick to see a change in any schema, every schema read only
after a change (one query each)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks
from django_tenants.utils import schema_context, tenant_context

from apps.recommendations.services import NIGHTLY_TASK, training_schedule_ensure
from apps.tenants.beat import StoreAwareDatabaseScheduler
from apps.tenants.selectors import store_list
from config.celery import app
from tests.workers import queue_names

ALL_STORES_TASKS = ("apps.apikeys.tasks.api_keys_expiry_notify",)


@pytest.fixture
def beat_on_test_connection(monkeypatch):
    """django-celery-beat closes "old" connections before reading; inside the test
    transaction that would close the test's own connection, so it is a no-op here. The key
    expiry entry runs every 60 s (as with API_KEYS_EXPIRY_NOTIFY_SECONDS=60): its 08:00 crontab
    would only be read from the database within two hours of 08:00."""
    monkeypatch.setattr("django_celery_beat.schedulers.close_old_connections", lambda: None)
    schedule = {name: dict(entry) for name, entry in settings.CELERY_BEAT_SCHEDULE.items()}
    schedule["api-keys-expiry-notify"]["schedule"] = 60.0
    monkeypatch.setitem(app.conf, "beat_schedule", schedule)


def _test_queues(conn):
    return [app.amqp.queues[name].bind(conn.default_channel) for name in queue_names()]


def _published() -> list[tuple[str, str, str]]:
    """(task, periodic task name, _schema_name) of every message waiting on the test queues,
    taken off the broker."""
    found = []
    with app.connection_for_read() as conn:
        for queue in _test_queues(conn):
            while (message := queue.get(no_ack=True)) is not None:
                headers = message.headers
                found.append(
                    (headers["task"], headers["periodic_task_name"], headers["_schema_name"])
                )
    return sorted(found)


def test_beat_sends_each_entry_with_its_target_schema_after_reloading(
    alpha, beta, beat_on_test_connection
):
    # given: empty test queues, bound on the broker; alpha's and beta's nightly trainings at
    # the current hour (other stores' trainings are switched off for this test)
    with app.connection_for_write() as conn:
        for queue in _test_queues(conn):
            queue.declare()
            queue.purge()
    now = timezone.now()
    stores = [store.schema_name for store in store_list()]
    for store in store_list():
        with tenant_context(store):
            if store.slug in ("alpha", "beta"):
                training_schedule_ensure(hour=now.hour, minute=0)
            else:
                PeriodicTask.objects.filter(task=NIGHTLY_TASK).update(enabled=False)
    # given: beat started (rows of CELERY_BEAT_SCHEDULE written in public) and running
    scheduler = StoreAwareDatabaseScheduler(app=app)
    scheduler.schedule  # noqa: B018  (beat's periodic check: remembers the last change)

    # when: every row is two days overdue and the schedule changes (as creating a store does),
    # so beat reloads everything from the database; then beat ticks until nothing is due
    overdue = now - timedelta(days=2)
    for schema in [settings.PUBLIC_SCHEMA_NAME, *stores]:
        with schema_context(schema):
            PeriodicTask.objects.update(last_run_at=overdue)
    PeriodicTasks.update_changed()
    reloaded = scheduler.schedule
    assert reloaded["api-keys-expiry-notify@__all_tenants_only__"].last_run_at == overdue
    for _ in range(len(reloaded) + 2):
        scheduler.tick()
    scheduler.sync()  # run times saved in each row's schema (as beat does between ticks)

    # then: one message per store for each all-stores task, public for billing and for the
    # dispatchers of per-store work, and each store's own schema for its nightly training
    expected = sorted(
        [(task, name, schema) for task, name in _all_stores_entries() for schema in stores]
        + [
            (
                "apps.notifications.tasks.usage_anomaly_scan_dispatch",
                "usage-anomaly-scan@public",
                "public",
            ),
            (
                "recommendations.impressions_persist_dispatch",
                "recommendation-impressions-persist@public",
                "public",
            ),
            ("billing.usage_rollup_and_report", "billing-usage-rollup-and-report@public", "public"),
            ("billing.stripe_events_retry", "billing-stripe-events-retry@public", "public"),
            ("celery.backend_cleanup", "celery.backend_cleanup", "public"),
            (NIGHTLY_TASK, "recommendations-nightly-training@store_alpha", "store_alpha"),
            (NIGHTLY_TASK, "recommendations-nightly-training@store_beta", "store_beta"),
        ]
    )
    assert _published() == expected


def _all_stores_entries() -> list[tuple[str, str]]:
    names = {"apps.apikeys.tasks.api_keys_expiry_notify": "api-keys-expiry-notify"}
    return [(task, f"{names[task]}@__all_tenants_only__") for task in ALL_STORES_TASKS]


def test_store_nightly_rows_have_names_unique_across_schemas_and_no_fixed_queue(alpha, beta):
    with tenant_context(alpha):
        in_alpha = training_schedule_ensure()
    with tenant_context(beta):
        in_beta = training_schedule_ensure()

    assert (in_alpha.name, in_alpha.queue) == ("recommendations-nightly-training@store_alpha", None)
    assert (in_beta.name, in_beta.queue) == ("recommendations-nightly-training@store_beta", None)


def _moved_hour(store) -> int:
    with tenant_context(store):
        current = PeriodicTask.objects.get(task=NIGHTLY_TASK).crontab.hour
    return (int(current) + 7) % 24


def test_a_store_schedule_change_is_seen_with_one_query_a_tick(
    alpha, beta, beat_on_test_connection
):
    # given: beat running, its schedule read
    scheduler = StoreAwareDatabaseScheduler(app=app)
    scheduler.schedule  # noqa: B018
    with CaptureQueriesContext(connection) as queries:
        assert scheduler.schedule_changed() is False
    assert len(_reads(queries)) == 1

    # when: alpha's nightly training moves (a row in alpha's own schema)
    hour = _moved_hour(alpha)
    with tenant_context(alpha):
        training_schedule_ensure(hour=hour, minute=5)

    # then: one query, whatever the number of stores, sees it; the reload has the new time
    with CaptureQueriesContext(connection) as queries:
        assert scheduler.schedule_changed() is True
    assert len(_reads(queries)) == 1
    scheduler._last_timestamp -= timedelta(seconds=1)  # as if the tick had not checked yet
    entry = scheduler.schedule["recommendations-nightly-training@store_alpha"]
    assert (entry.schedule.hour, entry.schedule.minute) == ({hour}, {5})
    assert entry.options["headers"]["_schema_name"] == "store_alpha"


def test_a_reload_reads_each_schema_with_one_query(alpha, beta, beat_on_test_connection):
    scheduler = StoreAwareDatabaseScheduler(app=app)
    stores = store_list().count()

    with CaptureQueriesContext(connection) as queries:
        models = scheduler.enabled_models()

    # the list of stores, then public and each store: one query each (and a switch of the
    # search path to each schema)
    assert len(_reads(queries)) == 1 + 1 + stores
    nightly = {m.name for m in models if m.task == NIGHTLY_TASK}
    assert {"recommendations-nightly-training@store_alpha"} <= nightly


def test_without_a_change_beat_does_not_reread_every_schema_every_five_minutes(
    alpha, beat_on_test_connection, settings
):
    # given: beat read its schedule six minutes ago (the library would reread it all now)
    scheduler = StoreAwareDatabaseScheduler(app=app)
    scheduler.schedule  # noqa: B018
    scheduler._last_full_sync -= timedelta(minutes=6)

    # then: only the change check runs
    with CaptureQueriesContext(connection) as queries:
        scheduler.schedule  # noqa: B018
    assert len(_reads(queries)) == 1

    # when: BEAT_FULL_RELOAD_SECONDS passed since the last reload, every schema is read again
    settings.BEAT_FULL_RELOAD_SECONDS = 0
    scheduler._last_full_sync -= timedelta(minutes=6)
    with CaptureQueriesContext(connection) as queries:
        scheduler.schedule  # noqa: B018
    assert len(_reads(queries)) == 1 + 1 + 1 + store_list().count()


def _reads(queries: CaptureQueriesContext) -> list[str]:
    """The statements run, without django-tenants' SET search_path before each one."""
    sqls = [query["sql"] for query in queries.captured_queries]
    return [sql for sql in sqls if not sql.startswith("SET search_path")]


def test_rows_of_entries_no_longer_configured_are_removed_at_start(db, beat_on_test_connection):
    # given: rows an earlier release wrote (the anomaly scan was sent to every store) and an
    # operator's own row
    old = "usage-anomaly-scan@__all_tenants_only__"
    PeriodicTask.objects.create(
        name=old, task="apps.notifications.tasks.usage_anomaly_scan", interval=_every_minute()
    )
    PeriodicTask.objects.create(
        name="operator-job", task="billing.stripe_events_retry", interval=_every_minute()
    )

    # when: beat starts
    StoreAwareDatabaseScheduler(app=app)

    # then: the stale row is gone, the configured one is there, the operator's row is kept
    rows = dict(PeriodicTask.objects.values_list("name", "task"))
    assert old not in rows
    assert rows["usage-anomaly-scan@public"] == (
        "apps.notifications.tasks.usage_anomaly_scan_dispatch"
    )
    assert rows["operator-job"] == "billing.stripe_events_retry"


def _every_minute() -> IntervalSchedule:
    interval, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    return interval
