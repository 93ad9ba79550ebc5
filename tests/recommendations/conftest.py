"""Two stores with a small real data set (MovieLens-100K shoppers 1..120, via the ingestion
services), each trained once with a tiny configuration, shared by this package's tests.

Store A's items are `a<movie id>`, store B's `b<movie id>`; both have shoppers "1".."120", so
a leak of one store's model or cache into the other shows as a foreign item id.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from asgiref.sync import async_to_sync
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.core.cache import redis_client
from apps.dashboard.consumers import store_group
from apps.recommendations import cache as rcache
from apps.recommendations import services, serving
from apps.recommendations.models import ModelVersion
from apps.recommendations.movielens import movielens_ingest, movielens_read
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_create
from tests.factories import subscribe_store

SUBSET_USERS = 120
# Small and fast: no hyper-parameter search, few ALS iterations, a small re-ranker.
TINY_CONFIG = {
    "search": False,
    "time_budget_seconds": 1,
    "als": {"factors": 16, "iterations": 4},
    "ranker": {"n_estimators": 10},
}


def train_now(config: dict | None = None, **start) -> ModelVersion:
    version = services.model_version_start(
        actor_label="test", config=config or TINY_CONFIG, dispatch=False, **start
    )
    return services.model_version_train(version_id=version.pk, precompute="sync")


def clear_store_keys(schema_name: str) -> None:
    client = redis_client()
    for key in client.scan_iter(match=f"{schema_name}:*", count=1000):
        client.delete(key)


@pytest.fixture(scope="package")
def media_root(tmp_path_factory):
    """Artifacts of this run in a folder of their own (parallel runs share schema names)."""
    override = override_settings(MEDIA_ROOT=str(tmp_path_factory.mktemp("media")))
    override.enable()
    yield Path(settings.MEDIA_ROOT)
    override.disable()


@pytest.fixture(scope="package")
def movielens():
    return movielens_read(max_user=SUBSET_USERS)


@pytest.fixture(scope="package")
def stores(django_db_setup, django_db_blocker, media_root, movielens):
    """Stores recs-a and recs-b, committed, each with an active model trained on the subset.
    Store A's training progress messages (its dashboard group) are kept in `progress`."""
    with django_db_blocker.unblock():
        a = tenant_create(slug="recs-a", name="Recs A")
        b = tenant_create(slug="recs-b", name="Recs B")
        for store in (a, b):  # Growth: experiments and a few trainings a day
            subscribe_store(store, "growth")
        # A layer instance of our own: receiving binds it to this fixture's event loops, which
        # must not leak into the shared layer other tests' consumers use.
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(store_group(a.schema_name), channel)
        with tenant_context(a):
            movielens_ingest(movielens, item_prefix="a", newest_at=_an_hour_ago())
            version_a = train_now()
        progress = []
        while True:
            try:
                message = async_to_sync(_receive)(layer, channel)
            except TimeoutError:
                break
            progress.append(message["payload"])
        with tenant_context(b):
            movielens_ingest(movielens, item_prefix="b", newest_at=_an_hour_ago())
            version_b = train_now()
        connection.set_schema_to_public()
    yield SimpleNamespace(
        a=a, b=b, version_a=version_a, version_b=version_b, progress=progress, data=movielens
    )
    with django_db_blocker.unblock():
        for tenant in (a, b):
            clear_store_keys(tenant.schema_name)
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
            Tenant.objects.filter(pk=tenant.pk).delete()
        connection.set_schema_to_public()


def _an_hour_ago():
    return timezone.now() - timedelta(hours=1)


async def _receive(layer, channel: str) -> dict:
    import asyncio

    return await asyncio.wait_for(layer.receive(channel), timeout=0.5)


@pytest.fixture(autouse=True)
def _fresh_serving_state():
    """Per-process caches (store state, catalog filters, models) start empty in every test."""
    serving.forget_all()
    rcache._redis_down_until = 0.0
    yield
    serving.forget_all()
    rcache._redis_down_until = 0.0


@pytest.fixture
def redis_down(settings):
    """Point the shared Redis client at a closed port for the test (the real Redis keeps
    running for everyone else)."""
    redis_client.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    rcache._redis_down_until = 0.0
    yield
    redis_client.cache_clear()
    rcache._redis_down_until = 0.0
