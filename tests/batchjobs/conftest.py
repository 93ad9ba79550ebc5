"""Two stores with a small real data set (MovieLens-100K shoppers 1..120 through the ingestion
services), each trained once with a tiny configuration, shared by this package's tests. Store
A's items are `a<movie id>`, store B's `b<movie id>`; both have shoppers "1".."120", so a leak
of one store's lists or files into the other shows as a foreign item id."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.merchandising import placing
from apps.recommendations import serving
from apps.recommendations.movielens import movielens_ingest, movielens_read
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_create
from tests.factories import subscribe_store
from tests.recommendations.conftest import (
    SUBSET_USERS,
    _an_hour_ago,
    clear_store_keys,
    train_now,
)


@pytest.fixture(scope="package")
def media_root(tmp_path_factory):
    from django.test import override_settings

    override = override_settings(MEDIA_ROOT=str(tmp_path_factory.mktemp("media")))
    override.enable()
    yield
    override.disable()


@pytest.fixture(scope="package")
def stores(django_db_setup, django_db_blocker, media_root):
    data = movielens_read(max_user=SUBSET_USERS)
    with django_db_blocker.unblock():
        a = tenant_create(slug="batch-a", name="Batch A")
        b = tenant_create(slug="batch-b", name="Batch B")
        versions = {}
        for store, prefix in ((a, "a"), (b, "b")):
            subscribe_store(store, "growth")
            with tenant_context(store):
                movielens_ingest(data, item_prefix=prefix, newest_at=_an_hour_ago())
                versions[prefix] = train_now()
        connection.set_schema_to_public()
    yield SimpleNamespace(a=a, b=b, version_a=versions["a"], version_b=versions["b"])
    with django_db_blocker.unblock():
        for tenant in (a, b):
            clear_store_keys(tenant.schema_name)
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
            Tenant.objects.filter(pk=tenant.pk).delete()
        connection.set_schema_to_public()


@pytest.fixture(autouse=True)
def _fresh_serving_state():
    """Per-process caches (store state, models, placements) start empty in every test."""
    serving.forget_all()
    placing.forget_all()
    yield
    serving.forget_all()
    placing.forget_all()


@pytest.fixture
def small_chunks(settings):
    """Chunks of two shoppers, so a handful of shoppers spans several tasks."""
    settings.BATCH_CHUNK_SIZE = 2
