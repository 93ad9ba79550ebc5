"""Swagger UI in a real browser (issue 17): on a store's host, "Authorize" takes a secret API
key and "Try it out" then calls the store with it."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db]


def test_swagger_authorizes_with_a_key_and_tries_an_operation(live_store, chromium):
    from playwright.sync_api import expect

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Given the docs of the store, authorized with its secret key
    page.goto(live_store.store + "/api/docs/")
    page.locator("button.authorize").first.click()
    dialog = page.locator(".modal-ux")
    scheme = dialog.locator("form").filter(has_text="ApiKey (http, Bearer)")
    scheme.locator("input").fill(live_store.api.key)
    scheme.locator("button.authorize").click()
    expect(scheme.locator("button", has_text="Logout")).to_be_visible()
    scheme.locator("button.btn-done").click()

    # When "Try it out" runs the item list
    operation = page.locator("#operations-Catalog-items_list")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    with page.expect_response(lambda response: "/api/v1/items/" in response.url) as answered:
        operation.get_by_role("button", name="Execute").click()

    # Then the call carried the key as a Bearer token and was answered with the page of items
    assert answered.value.request.headers["authorization"] == f"Bearer {live_store.api.key}"
    assert answered.value.status == 200
    assert sorted(answered.value.json()) == ["next", "previous", "results"]
    shown = operation.locator(".live-responses-table tbody td.response-col_status").first
    expect(shown).to_have_text("200")
    assert errors == []
