"""The fault suite's fixtures: committed stores with data, an API key and an active model; the
environment of the real processes (web servers, Celery workers) the tests start; a
`ProcessSet` per test whose logs are printed when the test fails.

The processes run the production settings against the test database (or a private copy of
it on a PostgreSQL of the test's own) and a private Redis each test starts itself, so nothing
here can touch the shared servers' other databases, keys or queues.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django_tenants.utils import tenant_context

from apps.catalog.services import events_ingest, items_upsert
from apps.core.pii import configured_keys
from apps.recommendations import services
from apps.recommendations.models import ModelVersion
from apps.tenants.models import Tenant
from apps.tenants.selectors import store_domain
from apps.tenants.services import tenant_create
from tests.factories import api_key_for, subscribe_store
from tests.processes import ProcessSet

STORES = 4
CATEGORIES = ["books", "games", "garden", "kitchen"]
ITEMS_PER_CATEGORY = 15
SHOPPERS = 120
# Small and fast: no hyper-parameter search, few ALS iterations, a small re-ranker.
TINY_CONFIG = {
    "search": False,
    "time_budget_seconds": 1,
    "als": {"factors": 8, "iterations": 3},
    "ranker": {"n_estimators": 10},
}


@dataclass(frozen=True)
class FaultStore:
    tenant: Tenant
    host: str
    key: str  # API key with scopes ingest, recommend, manage

    @property
    def headers(self) -> dict[str, str]:
        return {"Host": self.host, "Authorization": f"Bearer {self.key}"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows the logs of the processes it started with its report."""
    outcome = yield
    report = outcome.get_result()
    process_set = getattr(item, "process_set", None)
    if report.failed and process_set is not None:
        report.sections.append(("process logs", process_set.logs(max_chars=15_000)))


@pytest.fixture
def procs(request, tmp_path):
    """The test's processes; stopped at the end (their logs go with a failure's report)."""
    process_set = ProcessSet(tmp_path / "logs")
    request.node.process_set = process_set
    yield process_set
    process_set.close()


def test_database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


def server_env(*, database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """Environment of a web server or worker: production settings, the given PostgreSQL and
    Redis, this run's media folder and cache prefix."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(40),
        # Production requires it; the test process's own key, so both read each other's PII.
        "PII_ENCRYPTION_KEYS": ",".join(configured_keys()),
        "ALLOWED_HOSTS": ".localhost,localhost,127.0.0.1",
        "BASE_DOMAIN": settings.BASE_DOMAIN,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        # Production insists on a delivering backend; nothing listens there (no test sends).
        "EMAIL_URL": "smtp://127.0.0.1:9",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def _events(slug: str, category_of: dict[str, str], now: datetime) -> list[dict]:
    """Each shopper mostly views and buys items of one favourite category."""
    rows = []
    items = sorted(category_of)
    for shopper in range(SHOPPERS):
        favourite = CATEGORIES[shopper % len(CATEGORIES)]
        liked = [item for item in items if category_of[item] == favourite]
        for n in range(24):
            pool = liked if n % 6 else items
            item = pool[(shopper * 7 + n * 5) % len(pool)]
            rows.append(
                {
                    "event_id": f"seed-{shopper}-{n}",
                    "user_id": f"s{shopper}",
                    "item_id": item,
                    "type": "purchase" if n % 4 == 0 else "view",
                    "value": 1 if n % 4 == 0 else None,
                    "timestamp": now - timedelta(hours=24 * 20 - shopper - n * 9),
                }
            )
    return rows


def train_and_activate(config: dict | None = None) -> ModelVersion:
    """Train in this process (current store schema) and make sure the version is active."""
    version = services.model_version_start(
        actor_label="faults", config=config or TINY_CONFIG, dispatch=False, plan_limited=False
    )
    version = services.model_version_train(version_id=version.pk, precompute="none")
    if version.status == ModelVersion.Status.READY:
        version = services.model_version_activate(
            version=version, actor_label="faults", precompute="none"
        )
    assert version.status == ModelVersion.Status.ACTIVE, (version.status, version.error)
    return version


@pytest.fixture(scope="session")
def fault_media_root(tmp_path_factory):
    override = override_settings(MEDIA_ROOT=str(tmp_path_factory.mktemp("fault-media")))
    override.enable()
    yield Path(settings.MEDIA_ROOT)
    override.disable()


@pytest.fixture(scope="session")
def fault_stores(django_db_setup, django_db_blocker, fault_media_root) -> list[FaultStore]:
    """Stores flt-1..flt-4 on Enterprise (no quota in the way; webhooks), committed, each with
    60 items in 4 categories, 2,880 events of 120 shoppers and an API key (ingest, recommend,
    manage); flt-1 also has an active model v1. Dropped at the end of the session."""
    run = secrets.token_hex(2)
    stores: list[FaultStore] = []
    now = datetime.now(UTC)
    with django_db_blocker.unblock():
        try:
            for number in range(1, STORES + 1):
                tenant = tenant_create(slug=f"flt{run}-{number}", name=f"Fault store {number}")
                subscribe_store(tenant, "enterprise")
                _, key = api_key_for(tenant, scopes=("ingest", "recommend", "manage"))
                stores.append(FaultStore(tenant, store_domain(tenant.slug), key))
                with tenant_context(tenant):
                    category_of = {
                        f"{category}-{n}": category
                        for category in CATEGORIES
                        for n in range(ITEMS_PER_CATEGORY)
                    }
                    result = items_upsert(
                        rows=[
                            {"item_id": item, "title": item, "categories": [category]}
                            for item, category in category_of.items()
                        ]
                    )
                    assert result.errors == []
                    ingested = events_ingest(
                        rows=_events(tenant.slug, category_of, now), source="seed"
                    )
                    assert ingested.errors == []
                    if number == 1:
                        train_and_activate()
            connection.set_schema_to_public()
            yield stores
        finally:
            connection.set_schema_to_public()
            for store in stores:
                with connection.cursor() as cursor:
                    cursor.execute(f'DROP SCHEMA IF EXISTS "{store.tenant.schema_name}" CASCADE')
                Tenant.objects.filter(pk=store.tenant.pk).delete()
                shutil.rmtree(
                    Path(settings.MEDIA_ROOT) / "models" / store.tenant.schema_name,
                    ignore_errors=True,
                )
