"""Erasure that holds (issue 13): after DELETE /users/{id} the shopper is unknown to serving at
once (tombstone), their buy-again list is empty, nothing is exported, and the next training
neither knows their erased history nor counts it in co-purchase statistics; events after the
erasure start a fresh history."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog.models import Event
from apps.catalog.services import events_ingest, items_upsert
from apps.core.cache import redis_client
from apps.core.erasure import tombstones_key
from apps.core.models import ShopperErasure
from apps.recommendations import cache as rcache
from apps.recommendations import services
from apps.recommendations.model_store import models
from apps.recommendations.models import ModelVersion
from apps.recommendations.training import interactions_read, training_window
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_create
from tests.factories import api_key_for, subscribe_store
from tests.recommendations.conftest import clear_store_keys, train_now

pytestmark = pytest.mark.django_db

VICTIM = "victim"
ITEMS = [f"i{n}" for n in range(20)]


def _events() -> list[dict]:
    """40 shoppers buying among 20 items; the victim also buys i1 three times and is the only
    one to buy p-solo and q-solo together (twice)."""
    rng = random.Random(13)
    now = timezone.now()
    rows = []
    for user in range(40):
        for n, item in enumerate(rng.sample(ITEMS, 8)):
            rows.append(
                {
                    "event_id": f"s{user}-{n}",
                    "user_id": f"s{user}",
                    "item_id": item,
                    "type": "purchase",
                    "timestamp": now - timedelta(hours=2 + user + n),
                }
            )
    rows.append(
        {
            "event_id": "o-p",
            "user_id": "s0",
            "item_id": "p-solo",
            "type": "purchase",
            "timestamp": now - timedelta(hours=3),
        }
    )
    victim = [("i1", 300), ("i1", 420), ("i1", 540), ("i2", 600), ("i3", 660)]
    # p-solo and q-solo in the same basket twice (the co-purchase support threshold is 2).
    victim += [("p-solo", 700), ("q-solo", 699), ("p-solo", 900), ("q-solo", 899)]
    for n, (item, minutes_ago) in enumerate(victim):
        rows.append(
            {
                "event_id": f"v-{n}",
                "user_id": VICTIM,
                "item_id": item,
                "type": "purchase",
                "timestamp": now - timedelta(minutes=minutes_ago),
            }
        )
    return rows


def _active(version: ModelVersion) -> ModelVersion:
    if version.status != ModelVersion.Status.ACTIVE:
        version = services.model_version_activate(
            version=version, actor_label="test", precompute="sync"
        )
    return version


@pytest.fixture(scope="module")
def store(django_db_setup, django_db_blocker, media_root):
    """A committed store with an active model trained on `_events()`; dropped afterwards."""
    with django_db_blocker.unblock():
        tenant = tenant_create(slug="erasure-s", name="Erasure")
        subscribe_store(tenant, "growth")
        with tenant_context(tenant):
            items_upsert(
                rows=[{"item_id": i, "title": i, "categories": ["c"]} for i in ITEMS]
                + [{"item_id": i, "title": i, "categories": [i]} for i in ("p-solo", "q-solo")]
            )
            assert events_ingest(rows=_events(), source="seed").errors == []
            version = _active(train_now())
        connection.set_schema_to_public()
    yield tenant, version
    with django_db_blocker.unblock():
        clear_store_keys(tenant.schema_name)
        ShopperErasure.objects.filter(schema_name=tenant.schema_name).delete()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
        Tenant.objects.filter(pk=tenant.pk).delete()
        connection.set_schema_to_public()


def _copurchased(tenant, version: ModelVersion, a: str, b: str) -> bool:
    model = models.get(tenant.schema_name, version.pk, version.artifact_path).model
    i, j = model.item_index.get(a), model.item_index.get(b)
    return i is not None and j is not None and j in model.cooc[i].indices.tolist()


def test_an_erased_shopper_is_unknown_at_once_and_forgotten_by_the_next_training(
    store, store_client
):
    tenant, v1 = store
    _, key = api_key_for(tenant, scopes=("ingest", "recommend"))
    connection.set_schema_to_public()
    api = store_client(tenant, HTTP_AUTHORIZATION=f"Bearer {key}")
    personal = f"/api/v1/recommendations/users/{VICTIM}?k=5"
    buy_again = f"/api/v1/recommendations/users/{VICTIM}/buy-again?k=5"
    list_key = rcache.list_key(tenant.schema_name, v1.pk, VICTIM)

    # Given the victim known to the active model, with a cached list and a buy-again list
    before = api.get(personal).json()
    assert (before["model_version"], before["strategy"]) == ("v1", v1.strategy)
    again = [i["item_id"] for i in api.get(buy_again).json()["items"]]
    assert (again[0], sorted(again)) == ("i1", ["i1", "i2", "i3", "p-solo", "q-solo"])
    assert rcache.redis_call(lambda r: r.exists(list_key), None) == 1
    assert _copurchased(tenant, v1, "p-solo", "q-solo")

    # When the shopper is erased
    erased = api.delete(f"/api/v1/users/{VICTIM}")

    # Then serving knows them no more: trending, no buy-again, no cache refilled, no export
    assert erased.status_code == 200
    after = api.get(personal).json()
    assert (after["model_version"], after["strategy"]) == ("v1", "trending")
    assert api.get(buy_again).json()["items"] == []
    assert rcache.redis_call(lambda r: r.exists(list_key), None) == 0
    assert api.get(f"/api/v1/users/{VICTIM}/export").status_code == 404

    # And when Redis loses the tombstones, PostgreSQL's record keeps the shopper unknown and
    # the Redis copy is rebuilt
    redis_client().delete(tombstones_key(tenant.schema_name))
    assert api.get(personal).json()["strategy"] == "trending"
    assert redis_client().hexists(tombstones_key(tenant.schema_name), VICTIM) == 1

    # When a new event arrives, and a batch that was in flight during the erasure commits
    # an old event afterwards (received before the erasure)
    with tenant_context(tenant):
        events_ingest(
            rows=[
                {
                    "event_id": "v-new",
                    "user_id": VICTIM,
                    "item_id": "i5",
                    "type": "view",
                    "timestamp": timezone.now(),
                }
            ],
            source="seed",
        )
        straggler = Event.objects.create(
            user_id=VICTIM, item_id="i7", type="purchase", timestamp=timezone.now()
        )
        # (one test transaction: the database clock stands still, so arrival times are set)
        erased_at = ShopperErasure.objects.get(schema_name=tenant.schema_name).erased_at
        Event.objects.filter(event_id="v-new").update(received_at=erased_at + timedelta(seconds=1))
        Event.objects.filter(pk=straggler.pk).update(received_at=erased_at - timedelta(seconds=1))
    connection.set_schema_to_public()

    # Then the new event starts a fresh history (a session), never the model's old row
    fresh = api.get(personal).json()
    assert (fresh["model_version"], fresh["strategy"]) == ("v1", "session")

    # When the store trains again
    with tenant_context(tenant):
        since, until = training_window()
        read = interactions_read(since=since, until=until)
        v2 = _active(train_now())
    connection.set_schema_to_public()
    rcache.state_changed(tenant.schema_name)  # on commit, which the test transaction never has

    # Then the training read only the event that arrived after the erasure
    assert read.item_ids[read.user_ids == VICTIM].tolist() == ["i5"]

    # And the artifact's row of the victim holds only that event, co-purchases forgot the
    # erased history, and the new model (trained after the erasure) serves them again
    loaded = models.get(tenant.schema_name, v2.pk, v2.artifact_path).model
    assert loaded.seen_items(VICTIM) == ["i5"]
    assert not _copurchased(tenant, v2, "p-solo", "q-solo")
    assert api.get(buy_again).json()["items"] == []
    served = api.get(personal).json()
    assert (served["model_version"], served["strategy"]) == ("v2", v2.strategy)
    assert "i5" not in [item["item_id"] for item in served["items"]]
