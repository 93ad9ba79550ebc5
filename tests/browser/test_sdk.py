"""The browser SDK in real Chromium, on a storefront of another origin than the API.

The store's API runs on uvicorn (`live_store`, http://browserlive.localhost:<port>); a sample
storefront page is served by a second HTTP server on another port. The page loads
/sdk/v1/shelfsense.js from the API's host with the README's integrity hash, and:
- before consent sends nothing at all and stores no session id;
- with consent tracks a view, renders an accessible list, and a click on it sends a click
  event carrying the list's recommendation_id;
- with a user token from the "store's backend" gets the shopper's own list and tracks as them;
- the same page on an origin the key does not allow is refused (CORS), storing nothing.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.apikeys.publishable import user_token_sign
from apps.apikeys.sdk import sdk_integrity
from apps.apikeys.services import identity_secret_rotate, publishable_key_create
from apps.catalog.models import Event
from tests.browser.conftest import _free_port
from tests.seed_data import ITEMS, clustered_catalog, clustered_history

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db]

STOREFRONT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sample storefront</title>
<script type="module" src="{sdk}" integrity="{integrity}" crossorigin="anonymous"
        onerror="window.__sdkLoadError = true"></script>
<script type="module">
  import * as shelfsense from "{sdk}";
  window.shelfsense = shelfsense;
  window.__sdkReady = true;
</script></head>
<body><h1>Sample storefront</h1><div id="recs"></div></body></html>
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def storefront(live_store, django_db_blocker, tmp_path_factory):
    """The sample storefront (served on 127.0.0.1 and, as another origin, on localhost), a
    publishable key allowing only http://127.0.0.1:<port>, the store's identity secret, and a
    catalog with history."""
    port = _free_port()
    allowed = f"http://127.0.0.1:{port}"
    root = tmp_path_factory.mktemp("storefront")
    sdk_url = f"{live_store.store}/sdk/v1/shelfsense.js"
    (root / "index.html").write_text(STOREFRONT.format(sdk=sdk_url, integrity=sdk_integrity()))
    with django_db_blocker.unblock(), tenant_context(live_store.tenant):
        _, key = publishable_key_create(name="Sample storefront", allowed_origins=[allowed])
        secret = identity_secret_rotate()
    connection.set_schema_to_public()
    items = live_store.api.post("/api/v1/items/bulk", {"items": clustered_catalog()})
    assert (items["created"] + items["updated"], items["errors"]) == (ITEMS, [])
    history = clustered_history(seed=17, event_prefix="sdk")
    live_store.api.post("/api/v1/events/bulk", {"events": history}, expect=202)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), functools.partial(_Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, name="storefront", daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(
            allowed=f"{allowed}/index.html",
            refused=f"http://localhost:{port}/index.html",
            key=key,
            secret=secret,
            api_host=live_store.store.removeprefix("http://"),
        )
    finally:
        server.shutdown()
        server.server_close()


def _session_events(tenant, session_id: str) -> list[tuple[str, str]]:
    """The session's stored events, read on another thread: Playwright's event loop runs in
    this one, where Django refuses synchronous queries."""

    def read():
        try:
            with tenant_context(tenant):
                return list(
                    Event.objects.filter(session_id=session_id).values_list("type", "item_id")
                )
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(read).result()


def _open(browser, url: str, api_host: str):
    """A fresh page at `url`, with every request it sends to the API's host recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    api_requests: list = []
    page.on(
        "request",
        lambda request: (
            api_requests.append(request)
            if api_host in request.url and "/sdk/" not in request.url
            else None
        ),
    )
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.goto(url)
    page.wait_for_function("window.__sdkReady === true || window.__sdkLoadError === true")
    assert page.evaluate("window.__sdkLoadError") is None, console
    return page, api_requests, errors


def test_the_sdk_tracks_and_renders_from_another_origin(live_store, storefront, chromium):
    from playwright.sync_api import expect

    page, api_requests, errors = _open(chromium, storefront.allowed, storefront.api_host)
    init = {"apiBase": live_store.store, "key": storefront.key}

    # Given no consent: nothing is sent nor stored, whatever the page asks.
    nothing = page.evaluate(
        """async (init) => {
          shelfsense.init({...init, consent: false});
          const tracked = await shelfsense.track("view", "i01");
          const list = await shelfsense.render(document.getElementById("recs"),
                                               {placement: "trending"});
          return {tracked, items: list.items.length, sid: localStorage.getItem("shelfsense_sid"),
                  cookie: document.cookie};
        }""",
        init,
    )
    page.wait_for_timeout(300)
    assert nothing == {"tracked": None, "items": 0, "sid": None, "cookie": ""}
    assert api_requests == []
    assert page.locator("#recs li").count() == 0

    # When the visitor consents: a view is tracked under a first-party session id...
    tracked = page.evaluate(
        """async () => {
          shelfsense.setConsent(true);
          const answer = await shelfsense.track("view", "i02");
          return {answer, sid: localStorage.getItem("shelfsense_sid"),
                  same: shelfsense.sessionId() === localStorage.getItem("shelfsense_sid")};
        }"""
    )
    assert tracked["answer"] == {"accepted": 1, "duplicates": 0, "errors": []}
    assert len(tracked["sid"]) == 32
    assert tracked["same"] is True
    assert _session_events(live_store.tenant, tracked["sid"]) == [("view", "i02")]

    # ...and a list renders as an accessible list of links.
    shown = page.evaluate(
        """async () => {
          const list = await shelfsense.render(document.getElementById("recs"), {
            placement: "trending", k: 5, title: "Trending now", itemUrl: "#product-{item_id}"});
          return {id: list.recommendation_id, items: list.items.map((row) => row.item_id)};
        }"""
    )
    assert len(shown["id"]) == 32
    assert 1 <= len(shown["items"]) <= 5
    region = page.get_by_role("region", name="Trending now")
    expect(region).to_be_visible()
    links = region.get_by_role("list").get_by_role("listitem").get_by_role("link")
    expect(links).to_have_count(len(shown["items"]))
    first = links.first
    expect(first).to_have_attribute("href", f"#product-{shown['items'][0]}")
    expect(first).to_have_attribute(
        "aria-label", f"{shown['items'][0]} (recommendation 1 of {len(shown['items'])})"
    )

    # Then a click on it sends a click event with the list's recommendation_id.
    with page.expect_response(
        lambda response: "/api/v1/events/bulk" in response.url and response.request.method == "POST"
    ) as clicked:
        first.click()
    assert clicked.value.status == 202
    sent = json.loads(clicked.value.request.post_data)
    assert [(row["type"], row["item_id"], row["recommendation_id"]) for row in sent] == [
        ("click", shown["items"][0], shown["id"])
    ]
    assert sent[0]["session_id"] == tracked["sid"]
    assert "user_id" not in sent[0]

    # A signed-in shopper: the store's backend signs a token, the SDK acts as them only.
    token = user_token_sign(
        secret=storefront.secret, user_id="u07", expires_at=int(time.time()) + 600
    )
    personal = page.evaluate(
        """async (token) => {
          shelfsense.identify(token);
          const list = await shelfsense.recommend({placement: "personal", k: 3});
          const tracked = await shelfsense.track("add_to_cart", "i05");
          let refused = null;
          try {
            await shelfsense.recommend({placement: "personal",
                                        userToken: token.replace(/^[^.]+/, btoa("u08"))});
          } catch (error) { refused = {status: error.status, code: error.code}; }
          return {items: list.items.length, tracked, refused};
        }""",
        token,
    )
    assert personal["items"] == 3
    assert personal["tracked"]["accepted"] == 1
    assert personal["refused"] == {"status": 401, "code": "invalid_user_token"}
    u07 = live_store.api.get("/api/v1/users/u07/events?page_size=1")["results"][0]
    assert (u07["type"], u07["item_id"], u07["session_id"]) == (
        "add_to_cart",
        "i05",
        tracked["sid"],
    )
    assert errors == []


def test_a_page_on_an_origin_the_key_does_not_allow_is_refused(live_store, storefront, chromium):
    page, _, errors = _open(chromium, storefront.refused, storefront.api_host)

    outcome = page.evaluate(
        """async (init) => {
          shelfsense.init({...init, consent: true});
          const results = {};
          for (const [name, call] of [
              ["track", () => shelfsense.track("view", "i09")],
              ["recommend", () => shelfsense.recommend({placement: "trending"})]]) {
            try { await call(); results[name] = "sent"; }
            catch (error) { results[name] = error.name; }
          }
          return results;
        }""",
        {"apiBase": live_store.store, "key": storefront.key},
    )

    # The preflight is refused, so the browser never sent the requests themselves.
    assert outcome == {"track": "TypeError", "recommend": "TypeError"}
    session_id = page.evaluate("shelfsense.sessionId()")
    assert _session_events(live_store.tenant, session_id) == []
    assert errors == []
