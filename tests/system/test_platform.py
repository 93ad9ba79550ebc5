"""The platform as it runs, proven whole (issue 12): web, websockets, worker and beat as separate
processes (tests/system/conftest.py) over three stores, observed only through what a store
and its people see: the HTTP API, dashboard pages and the dashboard's websocket.

Two stores exist when the platform starts (`sysa` on Growth, which runs an A/B test; `sysb` on
Free); the third (`sysc`) signs up on the public site while everything runs, verifies its
e-mail from the message the platform sent, and creates its API key and trains from the
dashboard. Each store sends its catalog and history, trains, serves lists, and sends clicks and
purchases carrying the lists' `recommendation_id` — plus events that must *not* be attributed
(an item not in the list, another shopper, no id). The numbers asserted are computed from that
script.

Beat's jobs are observed by their effects: a burst of requests with an invalid key makes the
usage anomaly scan (run by beat in every store's schema) flag it, and each store's key
expiring in 3 days makes the expiry job notify its owner; both show on each owner's
notifications page (and on sysc's live socket). The nightly training is made due by moving
each store's schedule row to the next minute, as an operator editing the schedule would
(beat notices the change and reloads); the models API then lists a version started by
"schedule". Finally the worker's and beat's logs must hold no failure or traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from allauth.account.models import EmailAddress
from django.db import connection
from django_tenants.utils import tenant_context

from tests.factories import api_key_for, subscribe_store
from tests.processes import wait_until
from tests.seed_data import ITEMS, clustered_catalog, clustered_history, item_price
from tests.system.client import Browser, LiveSocket, StoreApi, request
from tests.system.conftest import store_cleanup

# `django_db` so the session's test database is set up; the tests read nothing through the ORM.
pytestmark = [pytest.mark.system, pytest.mark.slow, pytest.mark.django_db]

PASSWORD = "system-test-Passw0rd!"
SLUGS = ("sysa", "sysb", "sysc")
OWNERS = {slug: f"owner@{slug}.example.test" for slug in SLUGS}
KEY_NAME = "System key"
BAD_KEY_REQUESTS = 300  # >= 20 and most of their minute: the auth_failures rule
ANOMALY_TITLE = "Burst of API authentication failures"
TRAINING_TIMEOUT = 150.0


@dataclass
class Outcome:
    """What a store's script did: the expected analytics."""

    lists: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue: Decimal = Decimal("0.00")
    events: int = 0  # events stored (billed)
    clicks_today: int = 0  # every click event sent today, attributed or not
    arms: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class Store:
    slug: str
    url: str
    api: StoreApi
    browser: Browser
    outcome: Outcome = field(default_factory=Outcome)
    socket: LiveSocket | None = None


def send_events(store: Store, rows: list[dict]) -> None:
    body = store.api.post("/api/v1/events/bulk", {"events": rows}, expect=202)
    assert (body["accepted"], body["duplicates"], body["errors"]) == (len(rows), 0, []), body
    store.outcome.events += len(rows)
    store.outcome.clicks_today += sum(1 for row in rows if row["type"] == "click")


def serve_and_respond(store: Store, shoppers: list[str], tag: str) -> None:
    """Each shopper gets a list; every other list is clicked (its first item, by that
    shopper), every fourth also bought (with a `value`, or at the item's price). Lists left
    unclicked get events that must not count: a click on an item not in the list, a click
    carrying the list's id by another shopper. Also a few similar-item and trending lists
    (served, never clicked) and a click with no recommendation_id."""
    outcome = store.outcome
    served = []
    for user in shoppers:
        body = store.api.get(f"/api/v1/recommendations/users/{user}?k=5")
        assert body["items"], body
        served.append((user, body))
    for item in ("i01", "i02", "i03"):
        assert store.api.get(f"/api/v1/recommendations/items/{item}/similar?k=5")["items"]
    for _ in range(2):
        assert store.api.get("/api/v1/recommendations/trending?k=5")["items"]
    outcome.lists += len(served) + 5

    at = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    rows: list[dict] = []

    def event(n: int, user: str, item: str, kind: str, **extra) -> None:
        rows.append(
            {
                "event_id": f"{tag}-{kind}-{n}-{len(rows)}",
                "user_id": user,
                "item_id": item,
                "type": kind,
                "timestamp": at,
                **extra,
            }
        )

    for n, (user, body) in enumerate(served):
        items = [entry["item_id"] for entry in body["items"]]
        rec = body["recommendation_id"]
        arm = outcome.arms.get(body["strategy"]) if outcome.arms else None
        if arm is not None:
            arm["impressions"] += 1
        if n % 2 == 0:
            event(n, user, items[0], "click", recommendation_id=rec)
            outcome.clicks += 1
            if arm is not None:
                arm["clicks"] += 1
        if n % 4 == 0:
            if n % 8 == 0:
                event(n, user, items[0], "purchase", recommendation_id=rec, value=7.25)
                outcome.revenue += Decimal("7.25")
            else:
                event(n, user, items[0], "purchase", recommendation_id=rec)
                outcome.revenue += item_price(items[0])
            outcome.conversions += 1
            if arm is not None:
                arm["conversions"] += 1
        if n % 4 == 1:
            outside = next(f"i{k:02d}" for k in range(1, ITEMS + 1) if f"i{k:02d}" not in items)
            event(n, user, outside, "click", recommendation_id=rec)
        if n % 4 == 3:
            event(n, f"intruder-{n}", items[0], "click", recommendation_id=rec)
    event(0, shoppers[0], "i04", "click")
    send_events(store, rows)


def bad_key_burst(store: Store) -> None:
    """Requests with a key that does not exist, all within one minute (waits for a fresh
    minute when this one is nearly over)."""
    if datetime.now(UTC).second >= 50:
        wait_until(lambda: datetime.now(UTC).second < 50, timeout=15, message="a fresh minute")
    headers = {"Authorization": "Bearer ss_live_nope0000_notakeyatall"}
    for _ in range(BAD_KEY_REQUESTS):
        answer = request("GET", store.url + "/api/v1/items/", headers=headers)
        assert answer.status == 401, answer.text


def owner_browser(platform, slug: str) -> tuple[Browser, str]:
    browser = Browser()
    landing = browser.sign_in(platform.public_url, OWNERS[slug], PASSWORD)
    store_url = f"http://{slug}.localhost:{platform.web_port}"
    assert (landing.status, landing.url) == (200, store_url + "/"), landing.text[:500]
    return browser, store_url


def sign_up(platform, slug: str) -> tuple[Browser, str]:
    """A newcomer's store: sign up on the public site, confirm the address from the e-mail
    the platform sent, land on the new store's dashboard."""
    browser = Browser()
    page = browser.submit(
        platform.public_url + "/accounts/signup/",
        {
            "email": OWNERS[slug],
            "password1": PASSWORD,
            "password2": PASSWORD,
            "store_name": "System C",
            "store_slug": slug,
        },
    )
    assert (page.status, page.url) == (
        200,
        platform.public_url + "/accounts/confirm-email/",
    ), page.text[:800]

    def confirmation_link() -> str | None:
        for message in sorted(Path(platform.mail_dir).glob("*")):
            text = message.read_text(errors="replace")
            if OWNERS[slug] in text:
                match = re.search(r"http://localhost:\d+/accounts/confirm-email/[^\s]+/", text)
                if match:
                    return match.group(0)
        return None

    link = wait_until(confirmation_link, timeout=20, message=f"the confirmation e-mail of {slug}")
    browser.submit(link, {})
    store_url = f"http://{slug}.localhost:{platform.web_port}"
    landing = browser.get(store_url + "/")
    if landing.url != store_url + "/":  # not signed in by the confirmation: sign in
        landing = browser.sign_in(platform.public_url, OWNERS[slug], PASSWORD)
    assert (landing.status, landing.url) == (200, store_url + "/"), landing.text[:500]
    return browser, store_url


def dashboard_api_key(browser: Browser, store_url: str) -> str:
    page = browser.submit(
        store_url + "/api-keys/",
        {"name": KEY_NAME, "scopes": ["ingest", "recommend", "manage"], "expires_in_days": "3"},
    )
    match = re.search(r"<code>(ss_live_[A-Za-z0-9_-]+)</code>", page.text)
    assert page.status == 200, page.text[:800]
    assert match, page.text[:800]
    return match.group(1)


def wait_trained(store: Store, *, number: int, started_by: str | None = None) -> dict:
    def finished() -> dict | None:
        versions = store.api.get("/api/v1/recommendations/models")["results"]
        for version in versions:
            if version["number"] == number and version["finished_at"]:
                return version
        return None

    version = wait_until(finished, timeout=TRAINING_TIMEOUT, message=f"{store.slug} v{number}")
    assert version["status"] in {"active", "ready"}, version
    if started_by is not None:
        assert version["started_by"] == started_by, version
    return version


def make_nightly_due(django_db_blocker, slug: str) -> datetime:
    """Move the store's nightly training to the next minute at least 20 s away (beat sees the
    schedule change and reloads)."""
    from apps.recommendations.services import training_schedule_ensure
    from apps.tenants.models import Tenant

    now = datetime.now(UTC)
    due = (now + timedelta(seconds=80 if now.second > 40 else 60)).replace(second=0, microsecond=0)
    with django_db_blocker.unblock():
        with tenant_context(Tenant.objects.get(slug=slug)):
            training_schedule_ensure(hour=due.hour, minute=due.minute)
        connection.set_schema_to_public()
    return due


@pytest.fixture(scope="module")
def scenario(platform, django_db_blocker):
    """Runs the script over the three stores; the tests below assert its outcomes."""
    from apps.tenants.services import tenant_create
    from apps.users.models import User

    keys = {}
    with django_db_blocker.unblock():
        for slug, plan in (("sysa", "growth"), ("sysb", "free")):
            owner = User.objects.create_user(email=OWNERS[slug], password=PASSWORD)
            EmailAddress.objects.create(user=owner, email=owner.email, verified=True, primary=True)
            tenant = tenant_create(slug=slug, name=f"System {slug[-1].upper()}", owner=owner)
            subscribe_store(tenant, plan)
            _, keys[slug] = api_key_for(
                tenant,
                scopes=("ingest", "recommend", "manage"),
                name=KEY_NAME,
                expires_at=datetime.now(UTC) + timedelta(days=3),
            )
        connection.set_schema_to_public()
    stores: dict[str, Store] = {}
    try:
        yield _run_script(platform, django_db_blocker, keys, stores)
    finally:
        for store in stores.values():
            if store.socket is not None:
                store.socket.close()
        store_cleanup(django_db_blocker, list(SLUGS), list(OWNERS.values()))


def _run_script(
    platform, django_db_blocker, keys: dict[str, str], stores: dict[str, Store]
) -> SimpleNamespace:
    for slug in ("sysa", "sysb"):
        browser, url = owner_browser(platform, slug)
        stores[slug] = Store(slug, url, StoreApi(url, keys[slug]), browser)
        bad_key_burst(stores[slug])

    # The third store signs up while everything runs.
    browser, url = sign_up(platform, "sysc")
    key = dashboard_api_key(browser, url)
    sysc = stores["sysc"] = Store("sysc", url, StoreApi(url, key), browser)
    sysc.socket = LiveSocket(
        f"ws://sysc.localhost:{platform.web_port}/ws/dashboard/",
        browser,
        port=platform.ws_port,
        origin=url,
    )
    wait_until(
        lambda: sysc.socket.received(lambda m: m["type"] == "snapshot"),
        timeout=20,
        message="the dashboard socket's snapshot",
    )
    bad_key_burst(sysc)

    for store in stores.values():
        items = store.api.post("/api/v1/items/bulk", {"items": clustered_catalog()})
        assert (items["created"], items["errors"]) == (ITEMS, []), items
        send_events(store, clustered_history(seed=store.slug, event_prefix=f"{store.slug}-seed"))

    # Training: sysa and sysb through the API, sysc from the dashboard's models page.
    for slug in ("sysa", "sysb"):
        started = stores[slug].api.post("/api/v1/recommendations/models/train", {}, expect=202)
        assert started["number"] == 1, started
    page = sysc.browser.submit(url + "/models/", {}, action="/models/train/")
    assert page.status == 200, page.text[:500]
    nightly_due = {}
    for store in stores.values():
        wait_trained(store, number=1)
        nightly_due[store.slug] = make_nightly_due(django_db_blocker, store.slug)

    for store in stores.values():
        serve_and_respond(store, [f"u{n:02d}" for n in range(1, 31)], tag=f"{store.slug}-p1")

    # An A/B test on sysa: popularity (control) against trending; the served list's strategy
    # names its arm.
    sysa = stores["sysa"]
    experiment = sysa.api.post(
        "/api/v1/experiments/",
        {
            "name": "Popularity vs trending",
            "arms": [
                {"name": "popularity", "traffic_percent": 50, "strategy": "popularity"},
                {"name": "trending", "traffic_percent": 50, "strategy": "trending"},
            ],
        },
        expect=201,
    )
    sysa.outcome.arms = {
        name: {"impressions": 0, "clicks": 0, "conversions": 0}
        for name in ("popularity", "trending")
    }
    serve_and_respond(sysa, [f"u{n:02d}" for n in range(31, 51)], tag="sysa-p2")
    arms = sysa.outcome.arms
    assert sum(arm["impressions"] for arm in arms.values()) == 20, arms
    assert all(arm["impressions"] for arm in arms.values()), arms
    return SimpleNamespace(stores=stores, experiment=experiment, nightly_due=nightly_due)


# --- assertions, each polling until the platform has caught up ----------------------------------
def _poll(what: str, read, expected, timeout: float = 60.0):
    last: list = [None]

    def matches():
        last[0] = read()
        return last[0] == expected

    try:
        wait_until(matches, timeout=timeout, message=what, interval=1.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nexpected: {expected!r}\nlast seen: {last[0]!r}") from None


def test_analytics_per_store(scenario):
    for store in scenario.stores.values():
        expected = store.outcome
        ctr = round(expected.clicks / expected.lists, 4)
        conversion_rate = round(expected.conversions / expected.lists, 4)

        def summary(store=store):
            body = store.api.get("/api/v1/analytics/summary?days=7")
            return {
                "lists_served": body["lists_served"],
                "clicks": body["clicks"],
                "conversions": body["conversions"],
                "ctr": round(float(body["ctr"]), 4),
                "conversion_rate": round(float(body["conversion_rate"]), 4),
                "revenue": Decimal(str(body["revenue"])).quantize(Decimal("0.01")),
                "currency": body["currency"],
                "days": len(body["by_day"]),
                "by_day_lists": sum(day["lists_served"] for day in body["by_day"]),
            }

        _poll(
            f"{store.slug}'s analytics summary",
            summary,
            {
                "lists_served": expected.lists,
                "clicks": expected.clicks,
                "conversions": expected.conversions,
                "ctr": ctr,
                "conversion_rate": conversion_rate,
                "revenue": expected.revenue,
                "currency": "USD",
                "days": 7,
                "by_day_lists": expected.lists,
            },
        )


def test_experiment_results_per_arm(scenario):
    sysa = scenario.stores["sysa"]
    experiment_id = scenario.experiment["id"]

    def results():
        body = sysa.api.get(f"/api/v1/experiments/{experiment_id}/results")
        return {
            arm["arm"]: {key: arm[key] for key in ("impressions", "clicks", "conversions")}
            for arm in body["arms"]
        }

    _poll("sysa's experiment results", results, sysa.outcome.arms)


def test_usage_metered_for_billing(scenario):
    for store in scenario.stores.values():

        def usage(store=store):
            page = store.browser.get(store.url + "/billing/")
            assert page.status == 200, page.text[:300]
            found = {}
            for metric in ("events_ingested", "recommendation_requests"):
                match = re.search(
                    rf'data-testid="usage-{metric}">\s*<label[^>]*>[^:]*:\s*([\d,]+)', page.text
                )
                found[metric] = int(match.group(1).replace(",", "")) if match else None
            return found

        _poll(
            f"{store.slug}'s billing page usage",
            usage,
            {
                "events_ingested": store.outcome.events,
                "recommendation_requests": store.outcome.lists,
            },
        )


def test_live_socket_saw_counters_training_and_notifications(scenario):
    sysc = scenario.stores["sysc"]
    socket = sysc.socket
    expected_clicks = sysc.outcome.clicks_today
    wait_until(
        lambda: socket.received(
            lambda m: m["type"] == "counters" and m["events_today"].get("click") == expected_clicks
        ),
        timeout=30,
        message=f"a counters push with {expected_clicks} clicks today",
    )
    finished = socket.received(lambda m: m["type"] == "training.finished")
    assert [m["number"] for m in finished][:1] == [1], socket.messages
    progress = [m for m in socket.messages if m["type"] == "training.progress"]
    assert progress, socket.messages
    wait_until(
        lambda: socket.received(
            lambda m: m["type"] == "notification" and m["title"] == ANOMALY_TITLE
        ),
        timeout=120,
        message="the usage anomaly notification on the live socket",
    )


def test_beat_jobs_ran_in_every_store(scenario):
    """The anomaly scan and the key-expiry job, both all-stores entries, notified each owner."""
    for store in scenario.stores.values():

        def notifications(store=store):
            page = store.browser.get(store.url + "/notifications/")
            assert page.status == 200, page.text[:300]
            return {
                "anomaly": ANOMALY_TITLE in page.text,
                "key_expiry": f"API key &quot;{KEY_NAME}&quot; expires on" in page.text
                or f'API key "{KEY_NAME}" expires on' in page.text,
            }

        _poll(
            f"{store.slug}'s notifications",
            notifications,
            {"anomaly": True, "key_expiry": True},
            timeout=150,
        )


def test_nightly_training_fired_in_every_store(scenario):
    for store in scenario.stores.values():
        version = wait_trained(store, number=2, started_by="schedule")
        assert version["created_at"] >= scenario.nightly_due[store.slug].isoformat()[:16], version


# A task that raised (Celery logs it at ERROR with its traceback), was retried, or any error.
FAILURE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback|raised unexpected|\bRetry in\b")


def test_no_task_failed(platform, scenario):
    """Run last: every line of the worker's and beat's logs (and the servers') is clean."""
    for process in platform.procs.processes:
        bad = [line for line in process.log().splitlines() if FAILURE.search(line)]
        assert bad == [], f"{process.name}:\n" + "\n".join(bad[:40])
    succeeded = next(p for p in platform.procs.processes if p.name == "worker").log()
    for task in (
        "usage_anomaly_scan",
        "api_keys_expiry_notify",
        "impressions_persist",
        "billing.usage_rollup_and_report",
        "train_nightly",
    ):
        assert re.search(rf"{re.escape(task)}\[[^\]]+\] succeeded", succeeded), task
