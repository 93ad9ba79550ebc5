"""A developer goes from the home page to a first recommendation with only the product's own
pages and the "Get started" checklist's snippets, in a real browser, in at most eight steps:

1. home page → "Create your store"; 2. the sign-up form; 3. the confirmation e-mail's link;
4. sign in; 5. the overview's checklist → "Create an API key"; 6. create the key;
7. copy the checklist's curl snippet and run it with the key; 8. read the recommendation.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from django.core import mail

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db]

EMAIL = "newcomer@example.test"
PASSWORD = "newcomer-Passw0rd-long"
SLUG = "firstshop"


def _confirmation_link() -> str:
    for message in reversed(mail.outbox):
        if EMAIL in message.to:
            match = re.search(r"http://localhost:\d+/accounts/confirm-email/\S+/", message.body)
            if match:
                return match.group(0)
    raise AssertionError("no confirmation e-mail")


def _json_answers(output: str) -> list[dict]:
    """curl prints each answer's body with no newline between them."""
    decoder, answers, at = json.JSONDecoder(), [], 0
    while at < len(output):
        if output[at].isspace():
            at += 1
            continue
        answer, at = decoder.raw_decode(output, at)
        answers.append(answer)
    return answers


def test_a_newcomer_reaches_a_first_recommendation_with_the_checklist_alone(live_store, chromium):
    from playwright.sync_api import expect

    platform = f"http://localhost:{live_store.port}"
    store = f"http://{SLUG}.localhost:{live_store.port}"
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    steps = 0

    # 1. The home page says what the product does and leads to sign-up.
    page.goto(platform + "/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.get_by_role("link", name="Create your store").click()
    steps += 1

    # 2. Sign up with a store.
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.fill("input[name=store_name]", "First Shop")
    page.fill("input[name=store_slug]", SLUG)
    page.locator("form").filter(has=page.locator("input[name=store_slug]")).locator(
        "button[type=submit]"
    ).click()
    page.wait_for_url(re.compile(r".*/accounts/confirm-email/$"))
    steps += 1

    # 3. Confirm the address from the e-mail.
    page.goto(_confirmation_link())
    page.locator("form").filter(has=page.locator("button[type=submit]")).last.locator(
        "button[type=submit]"
    ).click()
    steps += 1

    # 4. Open the store (signing in when the confirmation did not).
    page.goto(store + "/")
    if "/accounts/login/" in page.url:
        page.fill("input[name=login]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        page.locator("form").filter(has=page.locator("input[name=password]")).locator(
            "button[type=submit]"
        ).click()
        page.wait_for_url(store + "/")
    steps += 1
    checklist = page.get_by_test_id("get-started")
    expect(checklist).to_be_visible()
    expect(page.get_by_test_id("step-key")).to_have_attribute("data-done", "false")

    # 5. The checklist's first step links to the keys page.
    checklist.get_by_role("link", name="Create an API key").click()
    steps += 1

    # 6. Create a key with the scopes the checklist names.
    form = page.get_by_test_id("secret-key-form")
    form.locator("input[name=name]").fill("First integration")
    for scope in ("ingest", "recommend", "manage"):
        form.locator(f"input[name=scopes][value={scope}]").check()
    form.get_by_role("button", name="Create key").click()
    key = re.search(r"ss_live_[A-Za-z0-9_-]+", page.content()).group(0)
    steps += 1

    # 7. Back on the overview, copy the curl snippet and run it as written, with the key.
    page.goto(store + "/")
    snippet = page.get_by_test_id("snippet-curl").text_content()
    assert store in snippet
    script = snippet.replace("export SHELFSENSE_KEY=paste-your-key-here", "")
    # The page's own snippet is what is under test: run it as a developer would paste it.
    run = subprocess.run(  # noqa: S603
        [shutil.which("bash"), "-euo", "pipefail", "-c", script],
        env={"PATH": "/usr/bin:/bin", "SHELFSENSE_KEY": key},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    steps += 1

    # 8. The last answer is the first recommendation.
    first = _json_answers(run.stdout)[-1]
    assert first.get("items"), run.stdout
    steps += 1

    # The checklist follows: the training runs in the background, so reload until it ends.
    for _ in range(30):
        page.reload()
        if page.get_by_test_id("step-train").get_attribute("data-done") == "true":
            break
        page.wait_for_timeout(1000)
    for step in ("key", "items", "events", "train"):
        expect(page.get_by_test_id(f"step-{step}")).to_have_attribute("data-done", "true")
    assert steps <= 8
    context.close()
