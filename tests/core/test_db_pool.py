"""Bounded PostgreSQL connections (issue 13): server processes borrow from a per-process psycopg
pool, and django-tenants' schema switching stays correct on pooled connections."""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings
from django.db import connection, connections
from django_tenants.utils import tenant_context

from apps.tenants.models import Tenant
from apps.tenants.selectors import store_domain
from apps.tenants.services import tenant_create
from tests.factories import ItemFactory, api_key_for
from tests.transactions import committed

ROOT = Path(__file__).resolve().parents[2]
POOL_SIZE = 4
CLIENTS = 64
REQUESTS_PER_CLIENT = 6
APP_NAME = "ss-pool-test-asgi"


POOL_ALIAS = "pool-schema-test"


@pytest.fixture
def pooled_alias():
    """A database alias on the test database with the pool options the settings give a server
    process (an alias of its own, so its pool is separate); `connections[POOL_ALIAS]` is a
    django-tenants wrapper per thread, as in a server."""
    settings_dict = copy.deepcopy(connection.settings_dict)
    settings_dict["CONN_MAX_AGE"] = 0
    settings_dict["OPTIONS"] = {
        **settings_dict.get("OPTIONS", {}),
        "pool": {"min_size": 1, "max_size": 2, "timeout": 10},
    }
    connections.settings[POOL_ALIAS] = settings_dict
    yield POOL_ALIAS
    connections[POOL_ALIAS].close_pool()
    connections[POOL_ALIAS].close()
    del connections.settings[POOL_ALIAS]


def test_pooled_connections_never_run_a_query_in_another_stores_schema(
    django_db_setup, django_db_blocker, pooled_alias
):
    # Given 8 threads sharing a pool of 2 connections, each alternating between the two stores
    # and returning its connection after every query (as a request does)
    errors: list[str] = []
    backends: set[int] = set()

    def worker(n: int) -> None:
        wrapper = connections[pooled_alias]
        try:
            for i in range(40):
                slug = "alpha" if (n + i) % 2 else "beta"
                wrapper.set_schema(f"store_{slug}")
                with wrapper.cursor() as cursor:
                    cursor.execute(
                        "SELECT current_schema(), pg_backend_pid(), "
                        "(SELECT array_agg(item_id ORDER BY item_id) FROM catalog_item "
                        " WHERE item_id LIKE '%%-only')"
                    )
                    schema, pid, items = cursor.fetchone()
                backends.add(pid)
                if schema != f"store_{slug}" or items != [f"{slug}-only"]:
                    errors.append(f"{slug}: ran in {schema}, saw {items}")
                wrapper.close()  # back to the pool, as request_finished does
        finally:
            wrapper.close()

    # When they run concurrently
    with django_db_blocker.unblock(), ThreadPoolExecutor(8) as executor:
        list(executor.map(worker, range(8)))

    # Then every query ran in its own store's schema, on at most the pool's 2 connections
    assert errors == []
    assert 1 <= len(backends) <= 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dsn() -> str:
    db = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        dbname=db["NAME"],
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        host=db["HOST"] or None,
        port=db["PORT"] or None,
    )


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class ConnectionSampler(threading.Thread):
    """Counts the server's connections to the test database in pg_stat_activity every 20 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_server = 0
        self.peak_database = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        with psycopg.connect(_dsn(), autocommit=True) as conn:
            while not self._stop_event.is_set():
                server, database = conn.execute(
                    "SELECT count(*) FILTER (WHERE application_name = %s), count(*) "
                    "FROM pg_stat_activity WHERE datname = current_database()",
                    [APP_NAME],
                ).fetchone()
                self.peak_server = max(self.peak_server, server)
                self.peak_database = max(self.peak_database, database)
                self.samples += 1
                time.sleep(0.02)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@pytest.fixture
def asgi_server():
    """uvicorn config.asgi:application in its own process on the test database, as `make run`
    and the ws service start it, with a pool of POOL_SIZE connections."""
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "DB_POOL_SIZE_ASGI": str(POOL_SIZE),
        "DB_POOL_MIN_SIZE": "1",
        "API_KEY_RATE_LIMIT": "",
        "PGAPPNAME": APP_NAME,  # libpq names the server's connections in pg_stat_activity
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(  # noqa: S603 (fixed argv)
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"uvicorn did not start:\n{output[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def pool_stores():
    """Two committed stores of their own (the audit trail is append-only: a committed key in a
    shared store would leave rows behind), each with one item and a `recommend` key; dropped
    afterwards. Slug → plaintext key."""
    suffix = uuid.uuid4().hex[:6]

    def create(slug):
        tenant = tenant_create(slug=slug, name=slug)
        with tenant_context(tenant):
            ItemFactory(item_id=f"{slug}-item")
        _, key = api_key_for(tenant, scopes=("recommend",))
        return tenant, key

    stores = [committed(lambda s=slug: create(s)) for slug in (f"pa-{suffix}", f"pb-{suffix}")]
    yield {tenant.slug: key for tenant, key in stores}

    def drop():
        connection.set_schema_to_public()
        for tenant, _ in stores:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
            Tenant.objects.filter(pk=tenant.pk).delete()

    committed(drop)


@pytest.mark.django_db
def test_64_concurrent_clients_on_the_asgi_server_stay_within_the_pool(asgi_server, pool_stores):
    # Given the ASGI server with a pool of 4 and 64 clients, half on each of two stores, each
    # reading its own store's item (found only in that store's schema)
    sampler = ConnectionSampler()
    sampler.start()
    failures: list[str] = []
    slugs = sorted(pool_stores)
    answers = dict.fromkeys(slugs, 0)
    lock = threading.Lock()

    def client(n: int) -> None:
        slug = slugs[n % 2]
        session = requests.Session()
        headers = {
            "Host": store_domain(slug),
            "Authorization": f"Bearer {pool_stores[slug]}",
        }
        for _ in range(REQUESTS_PER_CLIENT):
            response = session.get(
                f"{asgi_server}/api/v1/items/{slug}-item", headers=headers, timeout=60
            )
            body = response.json() if response.status_code == 200 else None
            with lock:
                if body is None or body.get("item_id") != f"{slug}-item":
                    failures.append(f"{slug}: {response.status_code} {response.text[:200]}")
                else:
                    answers[slug] += 1

    # When they all send their requests at once
    try:
        with ThreadPoolExecutor(CLIENTS) as executor:
            list(executor.map(client, range(CLIENTS)))
    finally:
        sampler.stop()

    print(  # the measured numbers, shown with -s
        f"{CLIENTS} clients x {REQUESTS_PER_CLIENT} requests: peak {sampler.peak_server} server "
        f"connections (pool {POOL_SIZE}), {sampler.peak_database} on the database in all"
    )

    # Then every request got its own store's item (0 errors) and the server never held more
    # PostgreSQL connections than its pool allows
    assert failures == []
    assert answers == dict.fromkeys(slugs, CLIENTS // 2 * REQUESTS_PER_CLIENT)
    assert sampler.samples > 5
    assert 1 <= sampler.peak_server <= POOL_SIZE
