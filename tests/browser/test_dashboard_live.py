"""The dashboard in a real browser: headless Chromium (Debian's package) through Playwright,
against the real ASGI app (uvicorn, in a thread of this process, so it uses the test database)
and a real Celery worker thread on the test run's queues (tests/workers.py).

A user signs in on the platform's domain like anyone would, is handed over to the store's
host, watches the overview's counters change while events arrive through the API (no
reload), starts a training from the models page and watches its progress reach done, starts
an experiment, and a screenshot of every main page goes to docs/screenshots/.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import socket
import threading
import time
from datetime import UTC, datetime
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
from apps.users.models import Membership, User
from apps.users.services import membership_invite
from tests.factories import api_key_for, subscribe_store
from tests.seed_data import ITEMS, clustered_catalog, clustered_history
from tests.system.client import StoreApi
from tests.workers import running_worker

# `django_db` so the session's test database is set up; the test itself reads nothing through
# the ORM (Playwright's sync API runs an event loop in this thread, where Django refuses
# synchronous queries): the store is committed by the module fixture and used over HTTP.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db]

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
SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
SLUG = "browserlive"
PASSWORD = "browser-test-Passw0rd"
TRAINING_TIMEOUT_MS = 180_000

if not (os.environ.get("CI") or (shutil.which(CHROMIUM) and Path(CHROMIUM).exists())):
    pytest.skip(
        f"No Chromium at {CHROMIUM} (install Debian's `chromium` package or set CHROMIUM_PATH); "
        "the browser test only skips outside CI.",
        allow_module_level=True,
    )


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
        RECS_TRAINING_TIME_BUDGET_SECONDS=1.0,
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
        User.objects.filter(pk__in=[owner.pk, analyst.pk]).delete()
    connections.settings["default"]["CONN_MAX_AGE"] = max_age
    overrides.disable()


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_live_dashboard_in_a_real_browser(live_store):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            _walk_through(live_store, browser)
        finally:
            browser.close()


def _walk_through(live_store, browser) -> None:
    from playwright.sync_api import expect

    # Given a store whose integration has sent its catalog and some history through the API.
    items = live_store.api.post("/api/v1/items/bulk", {"items": clustered_catalog()})
    assert (items["created"], items["errors"]) == (ITEMS, [])
    seeded = clustered_history(seed=6, event_prefix="seed")
    result = live_store.api.post("/api/v1/events/bulk", {"events": seeded}, expect=202)
    assert (result["accepted"], result["errors"]) == (len(seeded), [])
    views_so_far = sum(1 for row in seeded if row["type"] == "view")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # When the owner opens the store: sign-in on the platform, then the hand-off back.
    page.goto(live_store.store + "/")
    assert page.url.startswith(f"http://localhost:{live_store.port}/accounts/login/")
    page.fill("input[name=login]", live_store.owner.email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form").filter(has=page.locator("input[name=password]")).locator(
        "button[type=submit]"
    ).click()
    page.wait_for_url(live_store.store + "/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_test_id("live-label")).to_have_text("Live")
    counter = page.get_by_test_id("counter-view")
    expect(counter).to_have_text(str(views_so_far))

    # Then events sent through the API show up without a reload.
    page.evaluate("window.__sameDocument = true")
    fresh = [
        {
            "event_id": f"live-{n}",
            "user_id": f"u{n + 1:02d}",
            "item_id": f"i{n + 1:02d}",
            "type": "view",
            "timestamp": datetime.now(UTC).isoformat(),
        }
        for n in range(7)
    ]
    assert live_store.api.post("/api/v1/events/bulk", fresh, expect=202)["accepted"] == 7
    expect(counter).to_have_text(str(views_so_far + 7))
    assert page.evaluate("window.__sameDocument") is True
    _shot(page, "overview-live")

    # The models page: "Train now" and the live progress up to done.
    page.goto(live_store.store + "/models/")
    expect(page.get_by_test_id("live-label")).to_have_text("Live")
    page.evaluate("window.__sameDocument = true")
    # Every value the progress bar shows, as the socket's messages arrive.
    page.evaluate(
        """() => {
          window.__progress = [];
          const status = document.getElementById("training-status");
          const bar = document.getElementById("training-progress");
          new MutationObserver(() => window.__progress.push(bar.value)).observe(
            status, {childList: true, characterData: true, subtree: true});
        }"""
    )
    page.get_by_test_id("train-button").click()
    status = page.get_by_test_id("training-status")
    expect(status).to_have_attribute("data-status", "training")
    expect(status).to_have_attribute("data-status", "done", timeout=TRAINING_TIMEOUT_MS)
    assert status.text_content().startswith("Done · 100% · v1")
    assert page.locator("#training-progress").evaluate("bar => bar.value") == 100
    seen = page.evaluate("window.__progress")
    assert seen == sorted(seen), seen
    assert any(0 < value < 100 for value in seen), seen
    assert page.evaluate("window.__sameDocument") is True
    _shot(page, "models-training-done")

    # A second version, then roll back to the first (POST forms with CSRF, audited).
    page.get_by_test_id("train-button").click()
    expect(status).to_have_text(re.compile(r"^Done · 100% · v2"), timeout=TRAINING_TIMEOUT_MS)
    page.reload()
    expect(page.get_by_test_id("version-row")).to_have_count(2)
    statuses = page.get_by_test_id("version-status").all_text_contents()
    if statuses == ["Active", "Retired"]:  # v2 was good enough to replace v1
        page.get_by_test_id("rollback-button").click()
        expect(page.locator(".messages")).to_have_text("Rolled back: v1 serves this store again.")
    else:  # v2 did not beat v1 by the tolerance: activate it by hand
        assert statuses == ["Ready", "Active"], statuses
        page.get_by_role("button", name="Activate v2").click()
        expect(page.locator(".messages")).to_have_text("v2 now serves this store.")
    expect(page.get_by_test_id("version-status")).to_have_count(2)
    assert sorted(page.get_by_test_id("version-status").all_text_contents()) == [
        "Active",
        "Retired",
    ]
    _shot(page, "models")

    # An experiment: the active model against trending.
    page.goto(live_store.store + "/experiments/")
    page.fill("#experiment-name", "Model vs trending")
    page.get_by_test_id("experiment-submit").click()
    expect(page.get_by_test_id("experiment-status")).to_have_text("Running")
    expect(page.get_by_test_id("arm-row")).to_have_count(2)
    _shot(page, "experiment")
    page.goto(live_store.store + "/experiments/")
    expect(page.get_by_test_id("experiment-row")).to_have_count(1)
    _shot(page, "experiments")

    for name, path, heading in [
        ("overview", "/", "Overview"),
        ("catalog", "/catalog/", "Catalog"),
        ("item", "/catalog/i02/", "Kitchen item 02"),
        ("shopper", "/shoppers/u03/", "u03"),
        ("team", "/team/", "Team"),
        ("api-keys", "/api-keys/", "API keys"),
        ("audit", "/audit/", "Audit log"),
        ("notifications", "/notifications/", "Notifications"),
        ("settings", "/settings/", "Settings"),
        ("billing", "/billing/", "Billing"),
    ]:
        response = page.goto(live_store.store + path)
        assert response.status == 200, path
        expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
        _shot(page, name)

    assert errors == []
    context.close()
