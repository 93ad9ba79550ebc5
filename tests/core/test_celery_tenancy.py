"""A task sent from a store's context runs in that store's schema in a real worker."""

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.catalog.models import Item
from config.celery import app
from tests.workers import running_worker


@app.task(name="tests.schema_probe")
def schema_probe() -> dict:
    return {
        "schema": connection.schema_name,
        "items": list(Item.objects.values_list("item_id", flat=True)),
    }


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, django_db_blocker):
    with (
        django_db_blocker.unblock(),
        running_worker() as worker,
    ):
        yield worker


@pytest.mark.django_db
def test_task_runs_in_the_schema_it_was_sent_from(alpha, beta, celery_worker):
    with tenant_context(alpha):
        from_alpha = schema_probe.delay()
    with tenant_context(beta):
        from_beta = schema_probe.delay()

    assert from_alpha.get(timeout=20) == {"schema": "store_alpha", "items": ["alpha-only"]}
    assert from_beta.get(timeout=20) == {"schema": "store_beta", "items": ["beta-only"]}
