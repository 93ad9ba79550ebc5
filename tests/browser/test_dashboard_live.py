"""The dashboard in a real browser: headless Chromium (Debian's package) through Playwright,
against the real ASGI app (uvicorn, in a thread of this process, so it uses the test database)
and a real Celery worker thread on the test run's queues (tests/workers.py).

A user signs in on the platform's domain like anyone would, is handed over to the store's
host, watches the overview's counters change while events arrive through the API (no
reload), starts a training from the models page and watches its progress reach done, starts
an experiment, and a screenshot of every main page goes to docs/screenshots/.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings

from tests.seed_data import ITEMS, clustered_catalog, clustered_history

# `django_db` so the session's test database is set up; the test itself reads nothing through
# the ORM (Playwright's sync API runs an event loop in this thread, where Django refuses
# synchronous queries): the store is committed by the module fixture and used over HTTP.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db]

SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
TRAINING_TIMEOUT_MS = 180_000


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_live_dashboard_in_a_real_browser(live_store, chromium):
    _walk_through(live_store, chromium)


def _walk_through(live_store, browser) -> None:
    from playwright.sync_api import expect

    # Given a store whose integration has sent its catalog and some history through the API.
    items = live_store.api.post("/api/v1/items/bulk", {"items": clustered_catalog()})
    assert (items["created"], items["errors"]) == (ITEMS, [])
    seeded = clustered_history(seed=6, event_prefix="seed")
    result = live_store.api.post("/api/v1/events/bulk", {"events": seeded}, expect=202)
    assert (result["accepted"], result["errors"]) == (len(seeded), [])
    # The overview counts the events that happened today (UTC), not the whole history loaded.
    today = datetime.now(UTC).date()
    views_so_far = sum(
        1
        for row in seeded
        if row["type"] == "view" and datetime.fromisoformat(row["timestamp"]).date() == today
    )

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # When the owner opens the store: sign-in on the platform, then the hand-off back.
    page.goto(live_store.store + "/")
    assert page.url.startswith(f"http://localhost:{live_store.port}/accounts/login/")
    page.fill("input[name=login]", live_store.owner.email)
    page.fill("input[name=password]", live_store.password)
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
