"""Browser tests: headless Chromium (Debian's package) through Playwright, against the real
ASGI app (uvicorn, in a thread of this process, so it uses the test database) and a real Celery
worker thread on the test run's queues (tests/workers.py).

They run after every other test: they are the slowest, and signing in through the real form
leaves append-only `auth.login` rows in the public audit trail (a database trigger refuses their
deletion), which tests counting the public trail's sign-ins would otherwise see."""

from __future__ import annotations

import copy
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import uvicorn
from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import connection, connections
from django.test import override_settings
from django_tenants.utils import tenant_context

from apps.core.cache import redis_client
from apps.tenants.hosts import forget_tenant_hosts
from apps.users.models import Membership, User
from apps.users.services import membership_invite
from tests.factories import api_key_for, subscribe_store
from tests.system.client import StoreApi
from tests.workers import running_worker

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
]
SLUG = "browserlive"
PASSWORD = "browser-test-Passw0rd"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def live_store(django_db_setup, django_db_blocker, tmp_path_factory):
    """A committed store with an owner (verified email, password) and an API key, served by
    uvicorn on a free loopback port with a Celery worker thread; all removed afterwards."""
    from apps.tenants.services import tenant_create

    port = _free_port()
    overrides = override_settings(
        PUBLIC_PORT=str(port),
        MEDIA_ROOT=str(tmp_path_factory.mktemp("browser-media")),
        # A short hyper-parameter search: the point here is the live progress, not the model.
        RECS_TRAINING_SEARCH_TRIALS=1,
        # The same layer settings, so Channels builds a fresh layer for the server's event
        # loop: the shared instance may be bound to an earlier test's loop.
        CHANNEL_LAYERS=copy.deepcopy(settings.CHANNEL_LAYERS),
    )
    overrides.enable()
    # The server's threads close their connections after each request, so none outlives
    # the run (the test database is dropped at the end of the session).
    max_age = connections.settings["default"].get("CONN_MAX_AGE")
    connections.settings["default"]["CONN_MAX_AGE"] = 0
    with django_db_blocker.unblock():
        owner = User.objects.create_user(email="browser-owner@example.test", password=PASSWORD)
        EmailAddress.objects.create(user=owner, email=owner.email, verified=True, primary=True)
        tenant = tenant_create(slug=SLUG, name="Browser Demo Store", owner=owner)
        # Growth: the test runs an experiment, trains twice and fills three seats.
        subscribe_store(tenant, "growth")
        _, key = api_key_for(tenant, scopes=("ingest", "recommend", "manage"), name="Browser")
        analyst = User.objects.create_user(email="browser-analyst@example.test")
        Membership.objects.create(user=analyst, tenant=tenant, role=Membership.Role.ANALYST)
        membership_invite(
            tenant=tenant, email="teammate@example.test", role="developer", acting_user=owner
        )
        connection.set_schema_to_public()

        from config.asgi import application

        server = uvicorn.Server(
            uvicorn.Config(
                application, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
            )
        )
        thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
        with running_worker(shutdown_timeout=60):
            thread.start()
            deadline = time.monotonic() + 20
            while not server.started:
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.05)
            try:
                yield SimpleNamespace(
                    port=port,
                    tenant=tenant,
                    owner=owner,
                    store=f"http://{SLUG}.localhost:{port}",
                    api=StoreApi(f"http://{SLUG}.localhost:{port}", key),
                    password=PASSWORD,
                )
            finally:
                server.should_exit = True
                thread.join(20)
        with tenant_context(tenant):
            client = redis_client()
            for redis_key in client.scan_iter(match=f"{tenant.schema_name}:*", count=1000):
                client.delete(redis_key)
        connection.set_schema_to_public()
        tenant.delete(force_drop=True)
        # Every browser module makes a store of this slug again, on this process: its
        # host must not resolve to the deleted one from the process's short host cache.
        forget_tenant_hosts()
        User.objects.filter(pk__in=[owner.pk, analyst.pk]).delete()
    connections.settings["default"]["CONN_MAX_AGE"] = max_age
    overrides.disable()


@pytest.fixture
def chromium():
    """A headless Chromium; skipped (outside CI only) when the machine has none. Per test, set
    up after the database fixtures: Playwright's sync API runs an event loop in this thread,
    where Django refuses synchronous queries, so a test using it reads nothing through the ORM."""
    if not (os.environ.get("CI") or (shutil.which(CHROMIUM) and Path(CHROMIUM).exists())):
        pytest.skip(
            f"No Chromium at {CHROMIUM} (install Debian's `chromium` package or set "
            "CHROMIUM_PATH); browser tests only skip outside CI."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
