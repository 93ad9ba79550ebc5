"""Deploy-time migrations at many stores: `setup_platform` with nothing to migrate, then with one
new store migration (a column and an index built CONCURRENTLY) to apply to every store.

Targets (issue 18, 2 cores, 1,000 stores): nothing to migrate < 15 s; the new migration on
every store < 3 minutes, the stores answering reads meanwhile.

    DATABASE_URL=postgres://…/ss_bench REDIS_URL=redis://…/8 \\
        .venv/bin/python bench/migrate_stores.py [--stores 1000]

Stores `scale-<n>` are provisioned as sign-up does (bench/_stores.py) and kept for the next run.
The new migration is temporary: the notifications app's migrations are copied into a package
in a temporary folder with one more migration, and MIGRATION_MODULES points the app there for
this process only (other processes sharing the source tree never see it). A reader thread
queries a store's notifications table every 20 ms during the migration and reports its slowest
answer. Afterwards the column, the index, the migration rows and the recorded recipe are
removed from every schema, and `setup_platform` must find every store up to date again.
"""

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("DEBUG", "0")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from _stores import stores_ensure  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db.migrations.loader import MigrationLoader  # noqa: E402

from apps.tenants.models import SchemaRecipe, Tenant  # noqa: E402
from apps.tenants.schema_recipe import store_migrations_fingerprint  # noqa: E402
from apps.tenants.services import tenant_template_migrate  # noqa: E402
from apps.tenants.store_migrations import _conninfo, stores_migrate  # noqa: E402

APP = "notifications"
PACKAGE = "bench_migrations_notifications"
MIGRATION = "0900_bench_rank_and_index"
COLUMN = "bench_rank"
INDEX = "notif_bench_rank_idx"
TABLE = "notifications_notification"

NEW_MIGRATION = """
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("notifications", "{leaf}")]

    operations = [
        migrations.AddField("notification", "{column}", models.IntegerField(null=True)),
        AddIndexConcurrently(
            "notification", models.Index(fields=["{column}"], name="{index}")
        ),
    ]
"""


def _temporary_migrations(folder: Path) -> None:
    """The app's migrations plus the new one, as package PACKAGE under `folder`."""
    leaf = max(
        name
        for app, name in MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes()
        if app == APP
    )
    package = folder / PACKAGE
    shutil.copytree(
        ROOT / "apps" / APP / "migrations", package, ignore=shutil.ignore_patterns("__pycache__")
    )
    (package / f"{MIGRATION}.py").write_text(
        NEW_MIGRATION.format(leaf=leaf, column=COLUMN, index=INDEX)
    )
    sys.path.insert(0, str(folder))
    settings.MIGRATION_MODULES = {**settings.MIGRATION_MODULES, APP: PACKAGE}
    store_migrations_fingerprint.cache_clear()


class Reader(threading.Thread):
    """Reads one store's table every 20 ms; remembers the slowest answer."""

    def __init__(self, schema_name: str):
        super().__init__(daemon=True)
        self.schema_name = schema_name
        self.stop = threading.Event()
        self.slowest = 0.0
        self.reads = 0

    def run(self) -> None:
        with psycopg.connect(_conninfo(), autocommit=True) as conn:
            while not self.stop.wait(0.02):
                started = time.perf_counter()
                conn.execute(f'SELECT count(*) FROM "{self.schema_name}".{TABLE}').fetchone()
                self.slowest = max(self.slowest, time.perf_counter() - started)
                self.reads += 1


def _cleanup(schemas: list[str], fingerprint: str) -> None:
    def run(chunk: list[str]) -> None:
        with psycopg.connect(_conninfo(), autocommit=True) as conn:
            for schema in chunk:
                conn.execute(f'DROP INDEX IF EXISTS "{schema}".{INDEX}')
                conn.execute(
                    f'ALTER TABLE IF EXISTS "{schema}".{TABLE} DROP COLUMN IF EXISTS {COLUMN}'
                )
                conn.execute(
                    f'DELETE FROM "{schema}".django_migrations WHERE app = %s AND name = %s',
                    [APP, MIGRATION],
                )

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, [schemas[i::4] for i in range(4)]))
    SchemaRecipe.objects.filter(fingerprint=fingerprint).delete()


def _timed_setup() -> float:
    started = time.perf_counter()
    call_command("setup_platform", verbosity=0)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=1000)
    args = parser.parse_args()

    call_command("setup_platform", verbosity=0)
    stores_ensure(count=args.stores)
    stores = list(
        Tenant.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).values_list(
            "schema_name", flat=True
        )
    )
    load = os.getloadavg()[0]

    # 1. Nothing to migrate.
    idle = _timed_setup()
    print(
        f"setup_platform, nothing to migrate, {len(stores)} stores: {idle:.1f}s (target < 15s)",
        flush=True,
    )

    # 2. One new store migration: a column and an index built concurrently.
    folder = Path(tempfile.mkdtemp(prefix="bench-migrations-"))
    _temporary_migrations(folder)
    fingerprint = store_migrations_fingerprint()
    reader = Reader(stores[len(stores) // 2])
    reader.start()
    try:
        started = time.perf_counter()
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
        tenant_template_migrate()
        template = time.perf_counter() - started
        report = stores_migrate()
        total = time.perf_counter() - started
        reader.stop.set()
        reader.join()
        with psycopg.connect(_conninfo()) as conn:
            indexed = conn.execute(
                "SELECT count(*) FROM pg_indexes WHERE indexname = %s", [INDEX]
            ).fetchone()[0]
        print(
            f"new migration (column + concurrent index) on {len(report.migrated)} stores: "
            f"{total:.1f}s (template rebuilt in {template:.1f}s, stores {report.seconds:.1f}s; "
            f"{settings.STORE_MIGRATION_CONNECTIONS} connections) (target < 180s); "
            f"failed {len(report.failed)}; index present in {indexed} schemas",
            flush=True,
        )
        print(
            f"reads of {reader.schema_name} during it: {reader.reads}, "
            f"slowest {reader.slowest * 1000:.0f} ms",
            flush=True,
        )
    finally:
        reader.stop.set()
        # public too: migrate --shared records every app's migrations there
        _cleanup(
            [settings.PUBLIC_SCHEMA_NAME, settings.STORE_TEMPLATE_SCHEMA, *stores], fingerprint
        )
        settings.MIGRATION_MODULES = {
            k: v for k, v in settings.MIGRATION_MODULES.items() if k != APP
        }
        store_migrations_fingerprint.cache_clear()
        shutil.rmtree(folder, ignore_errors=True)

    # 3. Clean again: every store up to date, nothing migrated.
    report = stores_migrate()
    print(
        f"after cleanup: {report.up_to_date} of {report.stores} stores up to date, "
        f"{len(report.migrated)} migrated; load average {load:.1f} on {os.cpu_count()} cores",
        flush=True,
    )


if __name__ == "__main__":
    main()
