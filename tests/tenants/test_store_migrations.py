"""setup_platform's store migrations (apps/tenants/store_migrations.py): stores at the
template's state are found in one query and skipped; stores behind are migrated, one by Django
and the others by replaying its recorded SQL; a store whose table is locked fails alone.

The stores here are committed (the replay runs on connections of its own) and behind by real
migrations: django-celery-beat's last ones (a tenant app too), unapplied in their schemas.
Those tests run outside a test transaction (the replay's connections must see the changes)."""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from apps.tenants.models import SchemaRecipe
from apps.tenants.schema_recipe import _without_concurrently
from apps.tenants.services import tenant_create
from apps.tenants.store_migrations import (
    _conninfo,
    stores_migrate,
    stores_migration_states,
    stores_without_schedules,
)

# Forward from here: a column added (0012), a column dropped (0014), and changes without SQL.
BEHIND = ("django_celery_beat", "0011_auto_20190508_0153")
SLUGS = ("migr-a", "migr-b", "migr-c")


@pytest.fixture(scope="module")
def behind_stores(django_db_setup, django_db_blocker):
    """Three committed stores (migrated; the tests put them behind)."""
    with django_db_blocker.unblock():
        stores = [tenant_create(slug=slug, name=slug) for slug in SLUGS]
        connection.set_schema_to_public()
        yield stores
        connection.set_schema_to_public()
        for store in stores:
            store.delete(force_drop=True)


def _unapply(schema_name: str) -> None:
    with schema_context(schema_name):
        executor = MigrationExecutor(connection)
        executor.migrate([BEHIND])
    connection.set_schema_to_public()


def _applied(schema_name: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{schema_name}".django_migrations')
        return {f"{app}.{name}" for app, name in cursor.fetchall()}


def _reads(queries: CaptureQueriesContext) -> list[str]:
    sqls = [query["sql"] for query in queries.captured_queries]
    return [sql for sql in sqls if not sql.startswith("SET search_path")]


@pytest.mark.django_db
def test_stores_at_the_template_state_are_skipped_after_one_query(behind_stores, alpha, beta):
    # given: every store migrated
    template = settings.STORE_TEMPLATE_SCHEMA
    schemas = [template, "store_alpha", "store_beta", *(s.schema_name for s in behind_stores)]

    # when / then: one query (after finding which schemas have a migrations table) gives
    # every store's state, equal to the template's
    with CaptureQueriesContext(connection) as queries:
        states = stores_migration_states(schemas)
    assert len(_reads(queries)) == 2
    assert set(states) == set(schemas)
    assert len(set(states.values())) == 1

    # and: nothing to migrate
    report = stores_migrate()
    assert (report.migrated, report.failed) == ([], {})
    assert report.up_to_date == report.stores


def test_stores_behind_are_migrated_once_and_replayed(behind_stores, django_db_blocker):
    with django_db_blocker.unblock():
        # given: the three stores behind the template by django-celery-beat's last migrations
        expected = _applied(settings.STORE_TEMPLATE_SCHEMA)
        for store in behind_stores:
            _unapply(store.schema_name)
        missing = expected - _applied("store_migr_b")
        assert "django_celery_beat.0012_periodictask_expire_seconds" in missing
        assert all(name.startswith("django_celery_beat.") for name in missing)
        assert _column_types("store_migr_c") != _column_types(settings.STORE_TEMPLATE_SCHEMA)

        # when
        report = stores_migrate()

        # then: all three migrated (the first by Django, the others by replay), nothing
        # failed, their migrations and columns equal the template's; the others left alone
        assert sorted(report.migrated) == ["store_migr_a", "store_migr_b", "store_migr_c"]
        assert report.failed == {}
        for store in behind_stores:
            assert _applied(store.schema_name) == expected
            assert _column_types(store.schema_name) == _column_types(settings.STORE_TEMPLATE_SCHEMA)
        assert report.up_to_date == report.stores - 3


def _column_types(schema_name: str) -> list[tuple[str, str, str, int | None]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type, character_maximum_length "
            "FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name LIKE 'django_celery_beat%%' ORDER BY table_name, column_name",
            [schema_name],
        )
        return cursor.fetchall()


def test_a_store_whose_table_is_locked_fails_alone_and_is_done_next_run(
    behind_stores, django_db_blocker, settings
):
    with django_db_blocker.unblock():
        # given: the three stores behind, and a long transaction holding a table of migr-c
        for store in behind_stores:
            _unapply(store.schema_name)
        settings.STORE_MIGRATION_LOCK_TIMEOUT_MS = 200
        with psycopg.connect(_conninfo()) as blocker:
            blocker.execute(
                'LOCK TABLE "store_migr_c".django_celery_beat_periodictask IN ACCESS EXCLUSIVE MODE'
            )

            # when
            report = stores_migrate()

        # then: migr-c failed on the lock and was left as it was, the others were migrated
        assert sorted(report.migrated) == ["store_migr_a", "store_migr_b"]
        assert list(report.failed) == ["store_migr_c"]
        assert "lock timeout" in report.failed["store_migr_c"]
        assert "django_celery_beat.0012_periodictask_expire_seconds" not in _applied("store_migr_c")

        # when: the next run (the lock gone); then migr-c is migrated too
        again = stores_migrate()
        assert (again.migrated, again.failed) == (["store_migr_c"], {})


@pytest.mark.django_db
def test_setup_platform_announces_only_stores_without_schedules(behind_stores, alpha):
    # given: migr-a lost its beat entries
    with connection.cursor() as cursor:
        cursor.execute('DELETE FROM "store_migr_a".django_celery_beat_periodictask')
    everyone = ["store_alpha", *(s.schema_name for s in behind_stores)]
    assert stores_without_schedules(everyone) == ["store_migr_a"]

    # when
    call_command("setup_platform", verbosity=0)

    # then: its nightly training is back
    assert stores_without_schedules(everyone) == []


@pytest.mark.parametrize(
    ("recorded", "replayed"),
    [
        (
            'CREATE INDEX CONCURRENTLY "i" ON "t" ("c")',
            'CREATE INDEX "i" ON "t" ("c")',
        ),
        (
            'CREATE UNIQUE INDEX CONCURRENTLY "i" ON "t" ("c")',
            'CREATE UNIQUE INDEX "i" ON "t" ("c")',
        ),
        ('DROP INDEX CONCURRENTLY IF EXISTS "i"', 'DROP INDEX IF EXISTS "i"'),
        ("SELECT 'CREATE INDEX CONCURRENTLY'", "SELECT 'CREATE INDEX CONCURRENTLY'"),
    ],
)
def test_a_new_store_builds_concurrent_indexes_plainly_inside_its_transaction(recorded, replayed):
    assert _without_concurrently(recorded) == replayed


@pytest.mark.django_db
def test_check_passes_once_migrated_and_fails_without_the_release_template():
    call_command("setup_platform", check=True)

    # given: the store template of this release's migrations was never recorded
    SchemaRecipe.objects.all().delete()
    with pytest.raises(CommandError, match="Not migrated yet: the store template"):
        call_command("setup_platform", check=True)
