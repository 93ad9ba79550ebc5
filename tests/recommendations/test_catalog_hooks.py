"""The catalog announces item changes; the recommendations app, subscribed in its
AppConfig.ready(), invalidates what it cached (once per write)."""

import pytest
from django_tenants.utils import tenant_context

from apps.catalog.services import item_delete, items_upsert
from apps.core.cache import redis_client
from apps.recommendations.cache import catalog_key
from apps.recommendations.serving import state as serving_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog_counter(alpha):
    key = catalog_key(alpha.schema_name)
    redis_client().delete(key)
    yield key
    redis_client().delete(key)


def test_an_item_write_invalidates_the_recommendation_filters_once(
    alpha, catalog_counter, django_capture_on_commit_callbacks
):
    serving_state._catalogs[alpha.schema_name] = object()  # a loaded catalog state of this process
    with tenant_context(alpha), django_capture_on_commit_callbacks(execute=True) as callbacks:
        items_upsert(rows=[{"item_id": "hook-1", "title": "Hooked"}])

    assert len(callbacks) == 1
    assert redis_client().get(catalog_counter) == b"1"
    assert alpha.schema_name not in serving_state._catalogs


def test_hiding_an_item_invalidates_the_recommendation_filters_once(
    alpha, catalog_counter, django_capture_on_commit_callbacks
):
    with tenant_context(alpha):
        with django_capture_on_commit_callbacks(execute=True):
            items_upsert(rows=[{"item_id": "hook-2", "title": "Hidden soon"}])
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            item_delete(item_id="hook-2")

    assert len(callbacks) == 1
    assert redis_client().get(catalog_counter) == b"2"
