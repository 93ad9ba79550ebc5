"""Behind PgBouncer in transaction mode (Debian's pgbouncer, started here on a free port in
front of the test database), every statement runs in its own store's schema, even when stores'
requests interleave on few server connections.

The first test shows the danger the backend guards against: with django-tenants' session-level
`SET search_path`, one store's statement runs in another store's schema.
"""

from __future__ import annotations

import copy
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection, connections, transaction

ALPHA, BETA = "store_alpha", "store_beta"

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
_aliases = itertools.count()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def pgbouncer() -> Iterator[int]:
    """PgBouncer in transaction mode with two server connections, in front of the test
    database's server; yields its port."""
    if not Path(PGBOUNCER).exists():
        if os.environ.get("CI"):
            pytest.fail("pgbouncer is not installed (Debian's `pgbouncer` package)")
        pytest.skip("pgbouncer is not installed (Debian's `pgbouncer` package)")
    from django.conf import settings

    database = settings.DATABASES["default"]
    # Not under pytest's 0700 temporary root: as root, PgBouncer runs as `nobody`, which must
    # read its configuration and write its log.
    folder = Path(tempfile.mkdtemp(prefix="ss-pgbouncer-"))
    port = _free_port()
    user = database["USER"] or "postgres"
    (folder / "users.txt").write_text(f'"{user}" "{database["PASSWORD"] or ""}"\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={database["HOST"] or "127.0.0.1"} port={database["PORT"] or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = {"trust" if not database["PASSWORD"] else "plain"}
auth_file = {folder / "users.txt"}
pool_mode = transaction
default_pool_size = 2
max_client_conn = 50
ignore_startup_parameters = extra_float_digits,options
logfile = {folder / "pgbouncer.log"}
pidfile = {folder / "pgbouncer.pid"}
"""
    )
    command = [PGBOUNCER, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root (CI containers): drop to nobody
        folder.chmod(0o777)
        command[1:1] = ["--user", "nobody"]
    process = subprocess.Popen(  # noqa: S603 - our own config file
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "pgbouncer did not start"
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(10)
    shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def through_pgbouncer(port: int, *, pooling: bool) -> Iterator[str]:
    """A database alias of this thread going through PgBouncer (with the backend's pooling
    mode on or off); closed and removed afterwards."""
    alias = f"pgbouncer-{next(_aliases)}"
    connections.settings[alias] = {
        **copy.deepcopy(connection.settings_dict),  # the test database's name
        "PORT": port,
        "TRANSACTION_POOLING": pooling,
        "DISABLE_SERVER_SIDE_CURSORS": pooling,
        "CONN_MAX_AGE": 0,
        "OPTIONS": {},
    }
    try:
        yield alias
    finally:
        connections[alias].close()
        del connections[alias]
        del connections.settings[alias]


def _current_schema(cursor) -> str:
    """The schema a statement runs in, checked against the data: each test store holds one
    item named after it (tests/conftest.py)."""
    cursor.execute(
        "SELECT current_schema(), (SELECT array_agg(item_id) FROM catalog_item "
        "WHERE item_id LIKE '%%-only')"
    )
    schema, items = cursor.fetchone()
    assert items == [f"{schema.removeprefix('store_')}-only"], (schema, items)
    return schema


def _interleaved(port: int, *, pooling: bool) -> tuple[str, str]:
    """Store A gets a cursor (django-tenants sets its search_path on the way), store B runs a
    statement in between, then A runs its own: the schema A's statement actually ran in."""
    with (
        through_pgbouncer(port, pooling=pooling) as a,
        through_pgbouncer(port, pooling=pooling) as b,
    ):
        connections[a].set_schema(ALPHA)
        connections[b].set_schema(BETA)
        cursor_a = connections[a].cursor()
        with connections[b].cursor() as cursor_b:
            beta_saw = _current_schema(cursor_b)
        alpha_saw = _current_schema(cursor_a)
        cursor_a.close()
    return alpha_saw, beta_saw


def test_without_the_guard_a_session_search_path_leaks_between_stores(
    pgbouncer, django_db_setup, django_db_blocker
):
    # The control: pooling mode off, as django-tenants alone would run behind PgBouncer.
    with django_db_blocker.unblock():
        alpha_saw, beta_saw = _interleaved(pgbouncer, pooling=False)

    assert beta_saw == BETA
    assert alpha_saw == BETA  # store A's statement ran in store B's schema


def test_with_transaction_pooling_each_statement_runs_in_its_own_store(
    pgbouncer, django_db_setup, django_db_blocker
):
    with django_db_blocker.unblock():
        alpha_saw, beta_saw = _interleaved(pgbouncer, pooling=True)

    assert (alpha_saw, beta_saw) == (ALPHA, BETA)


def test_concurrent_stores_on_two_server_connections_never_cross(
    pgbouncer, django_db_setup, django_db_blocker
):
    """Eight threads, each switching between the two stores, through two server connections:
    ORM reads, raw statements, transactions and repeated statements (past psycopg's prepare
    threshold) all run in the store selected at that moment."""
    mismatches: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def client(number: int) -> None:
        try:
            with through_pgbouncer(pgbouncer, pooling=True) as alias:
                connection = connections[alias]
                for step in range(60):
                    store, other = (ALPHA, BETA) if (number + step) % 2 else (BETA, ALPHA)
                    connection.set_schema(store)
                    with connection.cursor() as cursor:
                        seen = _current_schema(cursor)
                    if seen != store:
                        mismatches.append((store, seen))
                    with transaction.atomic(using=alias), connection.cursor() as cursor:
                        first = _current_schema(cursor)
                        connection.set_schema(other)
                        second = _current_schema(cursor)
                    if (first, second) != (store, other):
                        mismatches.append((f"{store}>{other}", f"{first}>{second}"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    with django_db_blocker.unblock():
        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    assert errors == []
    assert mismatches == []


def test_a_rolled_back_savepoint_does_not_take_the_schema_with_it(
    pgbouncer, django_db_setup, django_db_blocker
):
    with django_db_blocker.unblock(), through_pgbouncer(pgbouncer, pooling=True) as alias:
        connection = connections[alias]
        connection.set_schema(ALPHA)
        with transaction.atomic(using=alias):
            with connection.cursor() as cursor:
                _current_schema(cursor)
            try:
                with transaction.atomic(using=alias):
                    connection.set_schema(BETA)
                    with connection.cursor() as cursor:
                        assert _current_schema(cursor) == BETA
                    raise RuntimeError("roll back the savepoint")
            except RuntimeError:
                pass
            with connection.cursor() as cursor:
                # Still beta selected: the SET LOCAL the savepoint undid is issued again.
                assert _current_schema(cursor) == BETA
            connection.set_schema(ALPHA)
            with connection.cursor() as cursor:
                assert _current_schema(cursor) == ALPHA
