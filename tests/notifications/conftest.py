"""A committed store for tests whose work runs in another thread (a real Celery worker): rows
inside a test's transaction would be invisible there."""

import pytest
from django.db import connection

from apps.tenants.services import tenant_create
from apps.users.models import User
from tests.factories import subscribe_store
from tests.workers import running_worker


@pytest.fixture(scope="module")
def committed_store(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        owner = User.objects.create_user(email="hooks-owner@example.test", password="x-pass-123")
        tenant = tenant_create(slug="dashhooks", name="Hooks Store", owner=owner)
        subscribe_store(tenant, "growth")
        connection.set_schema_to_public()
        yield tenant, owner
        connection.set_schema_to_public()
        tenant.delete(force_drop=True)
        owner.delete()


@pytest.fixture(scope="module")
def notifications_worker(committed_store, django_db_blocker):
    with (
        django_db_blocker.unblock(),
        running_worker() as worker,
    ):
        yield worker
