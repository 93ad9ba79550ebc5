"""Test-wide fixtures: a real PostgreSQL test database with two committed stores (alpha and
beta, each with one catalog row of its own) and a real Redis, cleared of this run's keys."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.core.cache import redis_client
from apps.tenants.models import Tenant
from apps.tenants.selectors import store_domain
from apps.tenants.services import public_tenant_ensure, tenant_create, tenant_template_migrate
from config.celery import app as celery_app
from tests.factories import (
    ItemFactory,
    MembershipFactory,
    UserFactory,
    api_key_for,
    subscribe_store,
)


def _clear_test_redis_keys() -> None:
    client = redis_client()
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    for pattern in (f"*:{prefix}:*", f"{prefix}-channels*"):
        for key in client.scan_iter(match=pattern, count=1000):
            client.delete(key)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        tenant_template_migrate()
        public_tenant_ensure()
        for slug in ("alpha", "beta"):
            tenant = tenant_create(slug=slug, name=f"{slug.title()} Store")
            with tenant_context(tenant):
                ItemFactory(item_id=f"{slug}-only", title=f"{slug.title()} only item")
        connection.set_schema_to_public()
    _clear_test_redis_keys()


@pytest.fixture(autouse=True)
def _public_schema_between_tests():
    """A request through the test client leaves the connection on the store's schema."""
    connection.set_schema_to_public()
    yield
    connection.set_schema_to_public()


@pytest.fixture
def alpha(db) -> Tenant:
    return Tenant.objects.get(slug="alpha")


@pytest.fixture
def beta(db) -> Tenant:
    return Tenant.objects.get(slug="beta")


@pytest.fixture
def subscribe(db):
    """`subscribe(tenant, "growth")` puts the store on that plan (active) for the test."""

    return subscribe_store


@pytest.fixture
def growth_stores(alpha, beta, subscribe):
    """Alpha and beta on Growth: A/B tests, webhooks, 15 seats and 24 trainings a day."""
    subscribe(alpha, "growth")
    subscribe(beta, "growth")


@pytest.fixture
def store_client():
    """`store_client(tenant)` → a test client whose requests go to that store's host."""

    def make(tenant: Tenant, **defaults) -> Client:
        return Client(HTTP_HOST=store_domain(tenant.slug), **defaults)

    return make


@pytest.fixture
def key_client(store_client):
    """`key_client(tenant, scopes=("recommend",))` → a client on the store's host with a fresh
    API key of that store."""

    def make(tenant: Tenant, scopes=("recommend",)) -> Client:
        _, key = api_key_for(tenant, scopes=scopes)
        connection.set_schema_to_public()
        return store_client(tenant, HTTP_AUTHORIZATION=f"Bearer {key}")

    return make


@pytest.fixture
def member_client(store_client):
    """`member_client(tenant, role="owner", **client_options)` → (client signed in as a new
    member with that role on the store's host, the user). Store pages need a member's session
    (apps.users.middleware)."""

    def make(tenant: Tenant, role: str = "owner", **client_options):
        user = UserFactory()
        MembershipFactory(user=user, tenant=tenant, role=role)
        client = store_client(tenant, **client_options)
        client.force_login(user)
        return client, user

    return make


@pytest.fixture
def page_queries():
    """`page_queries(client, path)` → the queries one GET of `path` makes (asserting 200).

    The short-lived per-process caches (membership, plan) are warmed first, so only the page's
    own queries count; on a slow machine an entry can still expire between the warm-up and the
    measurement, so the fewest of three is the page's count (an N+1 shows in all three)."""

    def count(client: Client, path: str, **headers) -> int:
        assert client.get(path, **headers).status_code == 200
        counts = []
        for _ in range(3):
            with CaptureQueriesContext(connection) as captured:
                assert client.get(path, **headers).status_code == 200
            counts.append(len(captured))
        return min(counts)

    return count


@pytest.fixture
def eager_celery(monkeypatch):
    """Tasks run inline where they are sent (`.delay` returns once done), errors propagate."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", True)


@pytest.fixture
def public_client() -> Client:
    return Client(HTTP_HOST=settings.BASE_DOMAIN)


@pytest.fixture
def websocket_db(monkeypatch):
    """Websocket tests run the consumer's database calls on the test's own connection (inside
    its transaction); Channels would otherwise close that connection between calls because
    autocommit is off inside the test transaction."""
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)
