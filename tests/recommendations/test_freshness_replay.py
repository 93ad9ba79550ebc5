"""The freshness replay of bench/freshness.py, through the HTTP API of two production web
processes (issue 15, item 4): a store trained on the first 80% of each MovieLens shopper's
ratings; a few shoppers' held-out ratings are posted one at a time to one process, and before
each, the other process's top-10 is scored against the ratings still to come. The list fixed
at training time (the answer before the first posted rating) is scored the same way."""

from __future__ import annotations

import http.client
from dataclasses import replace
from datetime import timedelta

import numpy as np
import orjson
import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.recommendations.models import ModelVersion
from apps.recommendations.movielens import movielens_ingest
from apps.tenants.models import Tenant
from apps.tenants.selectors import store_domain
from apps.tenants.services import tenant_create
from ml.data import Interactions
from ml.evaluation import per_user_time_split
from tests.factories import api_key_for, subscribe_store
from tests.faults.conftest import server_env, test_database_url
from tests.processes import ProcessSet
from tests.recommendations.conftest import clear_store_keys, train_now

pytestmark = pytest.mark.django_db

K = 10
SHOPPERS = 12  # the first shoppers (by id) with at least 5 held-out ratings
LIST = "/api/v1/recommendations/users/{}?k=" + str(K)
DISCOUNT = 1.0 / np.log2(np.arange(2, K + 2))


def _split(movielens):
    """(training ratings, held-out ratings per shopper in time order), as the bench splits."""
    rows = movielens.ratings
    interactions = Interactions.from_rows((u, i, "rating", r, ts) for u, i, r, ts in rows)
    train, test = per_user_time_split(interactions, test_fraction=0.2, min_interactions=5)
    kept = set(
        zip(
            train.user_ids.tolist(), train.item_ids.tolist(), train.timestamps.tolist(), strict=True
        )
    )
    held: dict[str, list[tuple[str, float, int]]] = {}
    order = np.lexsort((test.timestamps, test.user_ids.astype(str)))
    for j in order.tolist():
        held.setdefault(str(test.user_ids[j]), []).append(
            (str(test.item_ids[j]), float(test.values[j]), int(test.timestamps[j]))
        )
    return [r for r in rows if (r[0], r[1], r[3]) in kept], held


@pytest.fixture(scope="module")
def replay_store(django_db_setup, django_db_blocker, media_root, movielens):
    """A committed store trained on the training ratings, and a committed API key."""
    training, held = _split(movielens)
    with django_db_blocker.unblock():
        store = tenant_create(slug="recs-replay", name="Recs Replay")
    try:
        with django_db_blocker.unblock():
            subscribe_store(store, "growth")
            with tenant_context(store):
                movielens_ingest(
                    replace(movielens, ratings=training),
                    newest_at=timezone.now() - timedelta(hours=1),
                )
                version = train_now()
            api_key, key = api_key_for(store, scopes=("ingest", "recommend"))
            connection.set_schema_to_public()
        assert version.status == ModelVersion.Status.ACTIVE, version.activation_note
        yield store, key, held
        with django_db_blocker.unblock(), tenant_context(store):
            api_key.delete()
    finally:
        with django_db_blocker.unblock():
            clear_store_keys(store.schema_name)
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{store.schema_name}" CASCADE')
            Tenant.objects.filter(pk=store.pk).delete()
            connection.set_schema_to_public()


def _request(port: int, method: str, path: str, key: str, body: bytes | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Host": store_domain("recs-replay"), "Authorization": f"Bearer {key}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, orjson.loads(response.read())


def _ndcg(recommended: list[str], relevant: set[str]) -> float:
    gains = np.array([1.0 if item in relevant else 0.0 for item in recommended[:K]])
    gains = np.pad(gains, (0, K - len(gains)))
    return float(gains @ DISCOUNT / DISCOUNT[: min(len(relevant), K)].sum())


def test_replayed_ratings_make_the_next_answers_better_than_the_fixed_list(replay_store, tmp_path):
    _, key, held = replay_store
    shoppers = sorted((u for u, events in held.items() if len(events) >= 5), key=int)[:SHOPPERS]
    env = server_env(database_url=test_database_url(), redis_url=_redis_url())
    static_scores, fresh_scores, strategies = [], [], set()
    with ProcessSet(tmp_path / "logs") as procs:
        writer = procs.web("granian", env=env, workers=1, threads=1)
        reader = procs.web("granian", env=env, workers=1, threads=1)
        for user in shoppers:
            events = held[user]
            status, fixed = _request(reader.port, "GET", LIST.format(user), key)
            assert status == 200, fixed
            static = [row["item_id"] for row in fixed["items"]]
            static_rows, fresh_rows = [], []
            for step, (item, stars, _) in enumerate(events):
                status, answer = _request(reader.port, "GET", LIST.format(user), key)
                assert status == 200, answer
                strategies.add(answer["strategy"])
                remaining = {e[0] for e in events[step:]}
                static_rows.append(_ndcg(static, remaining))
                fresh_rows.append(_ndcg([row["item_id"] for row in answer["items"]], remaining))
                rating = {
                    "event_id": f"replay-{user}-{item}",
                    "user_id": user,
                    "item_id": item,
                    "type": "rating",
                    "value": stars,
                    "timestamp": timezone.now().isoformat(),
                }
                status, result = _request(
                    writer.port, "POST", "/api/v1/events/bulk", key, orjson.dumps([rating])
                )
                assert (status, result["accepted"]) == (202, 1), result
            static_scores.append(np.mean(static_rows))
            fresh_scores.append(np.mean(fresh_rows))

    static_ndcg, fresh_ndcg = float(np.mean(static_scores)), float(np.mean(fresh_scores))
    steps = sum(len(held[user]) for user in shoppers)
    print(
        f"\nHTTP replay, {len(shoppers)} shoppers, {steps} steps: NDCG@{K} static "
        f"{static_ndcg:.4f}, fresh {fresh_ndcg:.4f}, fresh / static = "
        f"{fresh_ndcg / static_ndcg:.3f}"
    )
    # The answers after the first posted rating were re-scored ...
    assert {s for s in strategies if s.endswith("+fresh")}
    # ... and predict what comes next at least as well as the list fixed at training time.
    assert static_ndcg > 0.0
    assert fresh_ndcg >= static_ndcg


def _redis_url() -> str:
    from django.conf import settings

    return settings.REDIS_URL
