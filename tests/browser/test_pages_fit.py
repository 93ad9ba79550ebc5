"""Every page fits a laptop and a phone: a real browser visits the public pages, every page the
store's navigation links to (so a new page is covered the day it is linked) and the detail pages
behind them, at 1366 and 390 px wide, and fails on sideways overflow, a console error or a
failed asset (a missing favicon included)."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from tests.seed_data import ITEMS, clustered_catalog, clustered_history

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db]

WIDTHS = (1366, 390)
DETAIL_PAGES = ("/catalog/i02/", "/shoppers/u03/")
PUBLIC_PAGES = ("/", "/accounts/login/", "/accounts/signup/")

OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return [];
  const wide = (node) => node.getBoundingClientRect().right > width + 1;
  // The innermost offenders: wide elements none of whose children is wide.
  return Array.from(document.querySelectorAll("body *"))
    .filter((node) => wide(node) && !Array.from(node.children).some(wide))
    .slice(0, 5)
    .map((node) => `${node.tagName.toLowerCase()}.${node.className}`);
}"""


def _problems(page) -> list[str]:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("document.documentElement.clientWidth")
    if width <= viewport:
        return []
    return [f"{width}px wide in {viewport}px: {page.evaluate(OVERFLOW)}"]


def _watch(page) -> list[str]:
    """Console errors, page errors and failed responses of `page`, as they happen."""
    broken: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and broken.append(msg.text))
    page.on("pageerror", lambda exc: broken.append(str(exc)))
    page.on(
        "response",
        lambda response: (
            response.status >= 400 and broken.append(f"{response.status} {response.url}")
        ),
    )
    return broken


def _sign_in(page, live_store) -> None:
    page.goto(live_store.store + "/")
    page.fill("input[name=login]", live_store.owner.email)
    page.fill("input[name=password]", live_store.password)
    page.locator("form").filter(has=page.locator("input[name=password]")).locator(
        "button[type=submit]"
    ).click()
    page.wait_for_url(live_store.store + "/")


def test_every_page_fits_a_laptop_and_a_phone(live_store, chromium):
    items = live_store.api.post("/api/v1/items/bulk", {"items": clustered_catalog()})
    assert items["created"] == ITEMS
    history = clustered_history(seed=3, event_prefix="fit")
    live_store.api.post("/api/v1/events/bulk", {"events": history}, expect=202)
    platform = f"http://localhost:{live_store.port}"

    failures: list[str] = []
    for width in WIDTHS:
        context = chromium.new_context(viewport={"width": width, "height": 900})
        context.set_default_timeout(20_000)
        page = context.new_page()
        broken = _watch(page)

        for path in PUBLIC_PAGES:
            page.goto(platform + path)
            failures += [f"{width}px {path}: {p}" for p in _problems(page)]

        _sign_in(page, live_store)
        nav = page.locator("nav.sidebar a").evaluate_all("links => links.map(a => a.href)")
        assert len(nav) >= 8, nav
        paths = [urlparse(url).path for url in nav] + list(DETAIL_PAGES)
        for path in paths:
            response = page.goto(live_store.store + path)
            assert response.status == 200, (width, path, response.status)
            failures += [f"{width}px {path}: {p}" for p in _problems(page)]
        failures += [f"{width}px: {message}" for message in broken]
        context.close()

    assert failures == [], "\n".join(failures)
