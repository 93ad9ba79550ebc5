"""Store migrations at a thousand stores: `setup_platform` runs this instead of
`migrate_schemas --tenant`, which spent 0.34 s a store with nothing to migrate.

1. One query reads every store's migration state: a hash of the rows of its `django_migrations`
   table. The store template (migrated first, by `tenant_template_migrate`) gives the expected
   state; the stores that have it are done.
2. The other stores are grouped by state. In each group one store (the pilot) is migrated by
   Django's migration executor while every statement is recorded, migration by migration;
   the recorded SQL is then replayed into the group's other stores by a few connections at
   once (STORE_MIGRATION_CONNECTIONS), as store creation replays the template's SQL. A
   migration with RunPython (data depending on the store) is not replayed: those stores are
   migrated by Django one by one.

Online safety is the migrations' own (see deploy/MIGRATIONS.md): additive changes, indexes
built with AddIndexConcurrently in a non-atomic migration (replayed outside a transaction),
and every replay connection runs with a lock_timeout, so a store whose table is busy fails
alone (reported, left for the next run) instead of queueing the store's traffic behind it.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.operations import RunPython, SeparateDatabaseAndState
from django_celery_beat.models import PeriodicTask
from psycopg import sql

from apps.tenants.models import Tenant
from apps.tenants.schema_recipe import current_recipe
from apps.tenants.services import store_schedules_ensure

logger = logging.getLogger(__name__)


@dataclass
class RecordedMigration:
    key: str
    atomic: bool
    replayable: bool
    statements: list[str] = field(default_factory=list)


@dataclass
class StoresMigrationReport:
    stores: int = 0
    up_to_date: int = 0
    migrated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def stores_migration_states(schemas: list[str]) -> dict[str, str]:
    """schema → md5 of its applied migrations (app.name, sorted), for every schema of
    `schemas` that has a django_migrations table; one query for all of them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = 'django_migrations' AND c.relkind = 'r' AND n.nspname = ANY(%s)",
            [schemas],
        )
        present = [row[0] for row in cursor.fetchall()]
        if not present:
            return {}
        parts = [
            sql.SQL(
                "SELECT {name}, md5(string_agg(app || '.' || name, ',' ORDER BY app, name)) "
                "FROM {schema}.django_migrations"
            ).format(name=sql.Literal(schema), schema=sql.Identifier(schema))
            for schema in present
        ]
        query = sql.SQL(" UNION ALL ").join(parts).as_string(cursor.cursor.connection)
        cursor.execute(query)
        return dict(cursor.fetchall())


def _replayable(migration) -> bool:
    for operation in migration.operations:
        if isinstance(operation, RunPython):
            return False
        if isinstance(operation, SeparateDatabaseAndState) and any(
            isinstance(inner, RunPython) for inner in operation.database_operations
        ):
            return False
    return True


def _migrate_recording(schema_name: str) -> list[RecordedMigration]:
    """Migrate one store with Django's executor, recording each migration's statements with
    their parameters inlined (search path statements left out)."""
    recorded: list[RecordedMigration] = []

    def progress(action: str, migration=None, fake: bool = False) -> None:
        if action == "apply_start":
            recorded.append(
                RecordedMigration(
                    key=f"{migration.app_label}.{migration.name}",
                    atomic=migration.atomic,
                    replayable=_replayable(migration),
                )
            )

    def record(execute, sql_text, params, many, context):
        if recorded and not sql_text.lstrip().upper().startswith("SET SEARCH_PATH"):
            inliner = psycopg.ClientCursor(context["connection"].connection)
            rows = list(params) if many else [params]
            for row in rows:
                statement = sql_text if row is None else inliner.mogrify(sql_text, row)
                recorded[-1].statements.append(statement)
        return execute(sql_text, params, many, context)

    connection.set_schema(schema_name)
    try:
        executor = MigrationExecutor(connection, progress_callback=progress)
        targets = executor.loader.graph.leaf_nodes()
        plan = executor.migration_plan(targets)
        with connection.execute_wrapper(record):
            executor.migrate(targets, plan=plan)
    finally:
        connection.set_schema_to_public()
    return recorded


def _conninfo() -> str:
    db = settings.DATABASES["default"]
    return psycopg.conninfo.make_conninfo(
        dbname=db["NAME"],
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None,
        port=str(db["PORT"]) if db.get("PORT") else None,
    )


def _replay_into(
    conn: psycopg.Connection, schema_name: str, migrations: list[RecordedMigration]
) -> None:
    path = sql.SQL("SET {local} search_path TO {schema}, {public}")
    public = sql.Identifier(settings.PUBLIC_SCHEMA_NAME)
    schema = sql.Identifier(schema_name)
    for migration in migrations:
        if migration.atomic:
            with conn.transaction():
                conn.execute(path.format(local=sql.SQL("LOCAL"), schema=schema, public=public))
                for statement in migration.statements:
                    conn.execute(statement)
        else:
            conn.execute(path.format(local=sql.SQL(""), schema=schema, public=public))
            for statement in migration.statements:
                conn.execute(statement)


def _replay(
    schemas: list[str], migrations: list[RecordedMigration], report: StoresMigrationReport
) -> None:
    """Replay into `schemas` with STORE_MIGRATION_CONNECTIONS connections, each store on its
    own; a store that fails is reported and the others go on."""
    workers = max(1, min(settings.STORE_MIGRATION_CONNECTIONS, len(schemas)))
    chunks = [schemas[offset::workers] for offset in range(workers)]

    def run(chunk: list[str]) -> tuple[list[str], dict[str, str]]:
        done, failed = [], {}
        with psycopg.connect(_conninfo(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("SET lock_timeout = {}").format(
                    sql.Literal(f"{settings.STORE_MIGRATION_LOCK_TIMEOUT_MS}ms")
                )
            )
            for schema_name in chunk:
                try:
                    _replay_into(conn, schema_name, migrations)
                    done.append(schema_name)
                except psycopg.Error as exc:
                    failed[schema_name] = str(exc).strip()
        return done, failed

    with ThreadPoolExecutor(workers) as pool:
        for done, failed in pool.map(run, chunks):
            report.migrated.extend(done)
            report.failed.update(failed)


def stores_migrate(*, verbosity: int = 0) -> StoresMigrationReport:
    """Bring every store to the template's migration state (module docstring). Returns what
    was done; stores that failed are listed in `failed` (schema → error) and left as they
    were, for the next run. The template must be migrated first."""
    started = time.perf_counter()
    report = StoresMigrationReport()
    schemas = list(
        Tenant.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
        .order_by("schema_name")
        .values_list("schema_name", flat=True)
    )
    report.stores = len(schemas)
    states = stores_migration_states([settings.STORE_TEMPLATE_SCHEMA, *schemas])
    expected = states[settings.STORE_TEMPLATE_SCHEMA]
    groups: dict[str | None, list[str]] = defaultdict(list)
    for schema_name in schemas:
        state = states.get(schema_name)
        if state == expected:
            report.up_to_date += 1
        else:
            groups[state].append(schema_name)
    for state, members in groups.items():
        if state is None:  # no migrations table at all: Django migrates it from nothing
            _migrate_each(members, report, verbosity=verbosity)
            continue
        pilot, rest = members[0], members[1:]
        try:
            migrations = _migrate_recording(pilot)
        except Exception as exc:
            logger.exception("store migration failed in %s", pilot)
            report.failed[pilot] = str(exc)
            continue
        report.migrated.append(pilot)
        if verbosity:
            names = ", ".join(m.key for m in migrations)
            print(f"{pilot}: applied {names}; {len(rest)} more store(s) in this state")
        if all(migration.replayable for migration in migrations):
            _replay(rest, migrations, report)
        else:
            _migrate_each(rest, report, verbosity=verbosity)
    report.seconds = time.perf_counter() - started
    return report


def _migrate_each(schemas: list[str], report: StoresMigrationReport, *, verbosity: int) -> None:
    for schema_name in schemas:
        try:
            call_command(
                "migrate_schemas",
                schema_name=schema_name,
                tenant=True,
                interactive=False,
                verbosity=verbosity,
            )
            report.migrated.append(schema_name)
        except Exception as exc:
            logger.exception("store migration failed in %s", schema_name)
            report.failed[schema_name] = str(exc)
        finally:
            connection.set_schema_to_public()


def stores_without_schedules(schemas: list[str]) -> list[str]:
    """The stores of `schemas` whose schema holds no beat entry at all (their `store_ready`
    never completed, or the rows were lost); one query."""
    if not schemas:
        return []
    parts = [
        sql.SQL("SELECT {name} WHERE NOT EXISTS (SELECT 1 FROM {schema}.{table})").format(
            name=sql.Literal(schema),
            schema=sql.Identifier(schema),
            table=sql.Identifier(PeriodicTask._meta.db_table),
        )
        for schema in schemas
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL(" UNION ALL ").join(parts).as_string(cursor.cursor.connection))
        return sorted(row[0] for row in cursor.fetchall())


def stores_schedules_repair(*, schemas: list[str]) -> int:
    """`store_schedules_ensure` (the `store_ready` announcement) for `schemas` and for every
    store without any beat entry. Returns how many stores were announced."""
    everyone = list(
        Tenant.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).values_list(
            "schema_name", flat=True
        )
    )
    targets = set(schemas) | set(stores_without_schedules(everyone))
    stores = Tenant.objects.filter(schema_name__in=targets).order_by("pk")
    for tenant in stores:
        store_schedules_ensure(tenant=tenant)
    return len(targets)


def platform_migrations_pending() -> str:
    """What keeps this release from running: shared migrations not applied in the public
    schema, or no store template recorded for its store migrations. Empty when none."""
    connection.set_schema_to_public()
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        return f"{len(plan)} shared migration(s), first {plan[0][0].app_label}.{plan[0][0].name}"
    if current_recipe() is None:
        return "the store template of this release's store migrations"
    return ""
