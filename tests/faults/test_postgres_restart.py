"""PostgreSQL restarted mid-ingestion (a private server holding a copy of the test database):
every batch is either accepted (202) and stored whole, or refused with a clean JSON 503 and
Retry-After; no batch is ever stored in part, and ingestion recovers by itself."""

from __future__ import annotations

import secrets
from collections import Counter

import psycopg
import pytest

from tests.faults.conftest import server_env, test_database_url
from tests.faults.traffic import Client, Traffic, event_batch
from tests.processes import PrivateRedis, private_postgres, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

BATCH = 200
ITEMS = ["books-1", "games-2", "garden-3", "kitchen-4", "not-in-catalog-yet"]


def _stored_per_batch(url: str, schemas: list[str], run: str) -> Counter:
    stored: Counter = Counter()
    with psycopg.connect(url) as conn:
        for schema in schemas:
            rows = conn.execute(
                f'SELECT event_id FROM "{schema}".catalog_event WHERE event_id LIKE %s',
                [f"{run}-%"],
            )
            stored.update(event_id.rsplit("-", 1)[0] for (event_id,) in rows)
    return stored


def test_postgres_restart_mid_ingestion_stores_each_batch_whole_or_refuses_it_cleanly(
    procs, fault_stores
):
    stores = fault_stores[:2]
    with private_postgres() as pg:
        pg.copy_database(source_url=test_database_url(), name="faults")
        redis = PrivateRedis(procs)
        redis.start()
        web = procs.web(
            "granian", env=server_env(database_url=pg.url("faults"), redis_url=redis.url)
        )
        run = f"pg-{secrets.token_hex(3)}"
        traffic = Traffic()

        def ingest(client: Client):
            tag, body = event_batch(run, BATCH, items=ITEMS)
            return client.request("POST", "/api/v1/events/bulk", body, tag=tag)

        for n in range(4):
            traffic.run(Client(web.port, stores[n % 2].headers), ingest)
        try:
            wait_until(lambda: traffic.count() >= 12, timeout=60, message="batches before")
            before = traffic.count()
            pg.restart()
            restarted = traffic.count()
            wait_until(
                lambda: sum(a.status == 202 for a in traffic.answers[restarted:]) >= 12,
                timeout=90,
                message="accepted batches after the restart",
            )
        finally:
            answers = traffic.stop()
        try:
            stored = _stored_per_batch(
                pg.url("faults"), [store.tenant.schema_name for store in stores], run
            )
        except Exception:
            print(pg.log())
            raise

    statuses = Counter(a.status for a in answers)
    refused = [a for a in answers if a.status != 202]
    assert [a.describe() for a in refused if a.status != 503] == [], statuses
    for answer in refused:
        assert int(answer.headers["retry-after"]) > 0
        assert answer.json()["error"]["code"]
    assert before >= 12
    accepted = {a.tag for a in answers if a.status == 202}
    assert {a.json()["accepted"] for a in answers if a.status == 202} == {BATCH}
    assert {tag: stored[tag] for tag in accepted} == dict.fromkeys(accepted, BATCH)
    partial = {tag: n for tag, n in stored.items() if n != BATCH}
    assert partial == {}
    print(f"batches: {dict(statuses)}; stored whole: {len(stored)}")
