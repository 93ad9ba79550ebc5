"""Redis stopped mid-traffic: the production server keeps serving recommendations (degraded,
from the model or PostgreSQL, never a 5xx), ingestion answers 202 (stored in PostgreSQL) or a
clean 503 with Retry-After, and every event of an accepted batch is stored."""

from __future__ import annotations

import secrets
from collections import Counter

import pytest
from django_tenants.utils import tenant_context

from apps.catalog.models import Event
from tests.faults.conftest import server_env, test_database_url
from tests.faults.traffic import Client, Traffic, cycle, event_batch
from tests.processes import PrivateRedis, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

SERVING_PATHS = [
    "/api/v1/recommendations/users/s1?k=5",
    "/api/v1/recommendations/users/s2?k=5&exclude_seen=false",
    "/api/v1/recommendations/users/never-seen?k=5",
    "/api/v1/recommendations/users/s3/buy-again?k=5",
    "/api/v1/recommendations/items/books-1/similar?k=5",
    "/api/v1/recommendations/items/games-2/bought-together?k=5",
    "/api/v1/recommendations/trending?k=5&category=garden",
]
ITEMS = ["books-1", "games-2", "garden-3", "kitchen-4"]


def test_redis_stopped_mid_traffic_serving_degrades_and_no_accepted_event_is_lost(
    procs, fault_stores
):
    store = fault_stores[0]  # has an active model (v1)
    redis = PrivateRedis(procs)
    redis.start()
    web = procs.web(
        "granian", env=server_env(database_url=test_database_url(), redis_url=redis.url)
    )
    run = f"redis-{secrets.token_hex(3)}"
    traffic = Traffic()
    paths = cycle(SERVING_PATHS)
    for _ in range(3):
        traffic.run(
            Client(web.port, store.headers), lambda client: client.request("GET", next(paths))
        )

    def ingest(client: Client):
        tag, body = event_batch(run, 50, items=ITEMS)
        return client.request("POST", "/api/v1/events/bulk", body, tag=tag)

    for _ in range(2):
        traffic.run(Client(web.port, store.headers), ingest)

    try:
        wait_until(lambda: traffic.count() >= 40, timeout=60, message="traffic with Redis up")
        redis.stop()
        stopped_at = traffic.count()
        wait_until(
            lambda: traffic.count() >= stopped_at + 80, timeout=90, message="traffic, Redis down"
        )
        down_until = traffic.count()
        redis.start()  # back, empty: nothing the API relies on may be lost with it
        wait_until(
            lambda: traffic.count() >= down_until + 40, timeout=60, message="traffic, Redis back"
        )
    finally:
        answers = traffic.stop()

    serving = [a for a in answers if a.method == "GET"]
    ingestion = [a for a in answers if a.method == "POST"]
    down = answers[stopped_at:down_until]
    assert [a.describe() for a in serving if a.status != 200] == []
    # The active model (from its artifact), or popularity from PostgreSQL.
    assert {a.json()["model_version"][0] for a in down if a.method == "GET"} <= {"v", "n"}
    assert Counter(a.method for a in down)["GET"] >= 20
    assert Counter(a.method for a in down)["POST"] >= 5
    refused = [a for a in ingestion if a.status != 202]
    assert [a.describe() for a in refused if a.status != 503] == []
    for answer in refused:
        assert int(answer.headers["retry-after"]) > 0
        assert answer.json()["error"]["code"]
    accepted = {a.tag: a.json()["accepted"] for a in ingestion if a.status == 202}
    assert set(accepted.values()) == {50}
    with tenant_context(store.tenant):
        stored = Counter(
            event_id.rsplit("-", 1)[0]
            for event_id in Event.objects.filter(event_id__startswith=f"{run}-").values_list(
                "event_id", flat=True
            )
        )
    assert stored == Counter(accepted)  # every accepted batch whole, nothing of a refused one
