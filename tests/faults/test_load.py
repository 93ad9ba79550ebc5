"""The load step: 64 concurrent clients across four stores (recommendations, trending, item
listings and event batches) on the production server (deploy/web.sh, granian) and on the ASGI
server (uvicorn config.asgi): no error at all, and the PostgreSQL connections of the server
(pg_stat_activity, by application name) never exceed its configured pool
(DB_POOL_SIZE_WEB / DB_POOL_SIZE_ASGI per process, config/settings/base.py).

Runs on a private PostgreSQL holding a copy of the test database, so a regression that leaks
connections fails this test instead of exhausting the shared server."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter

import psycopg
import pytest

from tests.faults.conftest import server_env, test_database_url
from tests.faults.traffic import Client, event_batch
from tests.processes import PrivateRedis, private_postgres

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

CLIENTS = 64
REQUESTS_PER_CLIENT = 12
POOL_SIZE = 3
WORKERS = 2
ITEMS = ["books-1", "games-2", "garden-3", "kitchen-4"]


class ConnectionWatch:
    """The largest number of connections named `app_name`, sampled every 20 ms."""

    def __init__(self, url: str, app_name: str) -> None:
        self.url, self.app_name = url, app_name
        self.peak = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop_event.is_set():
                (count,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                    [self.app_name],
                ).fetchone()
                self.peak = max(self.peak, count)
                time.sleep(0.02)

    def __enter__(self) -> ConnectionWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)


def _client_run(port: int, store, run: str, answers: list, lock: threading.Lock) -> None:
    client = Client(port, store.headers, timeout=60)
    mine = []
    for n in range(REQUESTS_PER_CLIENT):
        step = n % 4
        if step == 0:
            mine.append(client.request("GET", f"/api/v1/recommendations/users/s{n}?k=10"))
        elif step == 1:
            mine.append(client.request("GET", "/api/v1/recommendations/trending?k=10"))
        elif step == 2:
            mine.append(client.request("GET", "/api/v1/items/?category=books"))
        else:
            tag, body = event_batch(run, 20, items=ITEMS)
            mine.append(client.request("POST", "/api/v1/events/bulk", body, tag=tag))
    client.close()
    with lock:
        answers.extend(mine)


@pytest.mark.parametrize(
    ("server", "pool_variable"), [("granian", "DB_POOL_SIZE_WEB"), ("uvicorn", "DB_POOL_SIZE_ASGI")]
)
def test_64_concurrent_clients_across_stores_no_errors_and_connections_within_the_pool(
    procs, fault_stores, server, pool_variable
):
    app_name = f"ss-load-{server}-{secrets.token_hex(2)}"
    with private_postgres() as pg:
        pg.copy_database(source_url=test_database_url(), name="faults")
        redis = PrivateRedis(procs)
        redis.start()
        env = server_env(
            database_url=pg.url("faults"),
            redis_url=redis.url,
            PGAPPNAME=app_name,  # libpq names the server's connections in pg_stat_activity
            API_KEY_RATE_LIMIT="",
            **{pool_variable: str(POOL_SIZE)},
        )
        web = procs.web(server, env=env, workers=WORKERS)
        run = f"load-{secrets.token_hex(3)}"
        answers: list = []
        lock = threading.Lock()
        threads = [
            threading.Thread(
                target=_client_run,
                args=(web.port, fault_stores[n % len(fault_stores)], run, answers, lock),
            )
            for n in range(CLIENTS)
        ]
        with ConnectionWatch(pg.url("faults"), app_name) as watch:
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=300)
            elapsed = time.perf_counter() - started

    statuses = Counter(a.status for a in answers)
    print(
        f"{server}: {len(answers)} requests from {CLIENTS} clients in {elapsed:.1f}s "
        f"({len(answers) / elapsed:.0f} req/s), statuses {dict(statuses)}, peak PostgreSQL "
        f"connections {watch.peak} (pool {WORKERS} x {POOL_SIZE})"
    )
    assert len(answers) == CLIENTS * REQUESTS_PER_CLIENT
    errors = [a.describe() for a in answers if a.status not in (200, 202)]
    assert errors[:5] == [], f"{len(errors)} errors"
    assert 1 <= watch.peak <= WORKERS * POOL_SIZE
