"""What freshness costs a shopper with nothing new (issue 15, item 6): the serving round trip
reads the shopper's newest-event time (`recent-at:`, kept by ingestion's push script) with the
cached list, and the recent-events list is only read and parsed when that time is after the
model's training cut-off."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog import recent
from apps.core.cache import redis_client
from apps.recommendations import cache as rcache
from apps.recommendations.serving import fresh, shopper
from apps.recommendations.serving.results import Filters
from apps.recommendations.serving.shopper import recommend_for_shopper
from ml.model.fresh import FreshServing

pytestmark = pytest.mark.django_db

LIST = "/api/v1/recommendations/users/{}?k=5"


@pytest.fixture(autouse=True)
def _no_recent_lists_left(stores):
    yield
    client = redis_client()
    for family in ("recent", "recent-at", "fresh", "fresh-claim"):
        for key in client.scan_iter(match=f"{stores.a.schema_name}:*:{family}:*", count=1000):
            client.delete(key)


def _row(user_id: str, n: int, moment: datetime, session_id: str | None = None) -> tuple:
    return (f"cost-{user_id}-{n}", user_id, "a1", "view", None, moment, None, session_id, None)


def test_the_newest_event_time_is_the_batch_maximum_and_never_goes_back(stores):
    # given a batch pushed out of time order, then an older backfill
    newest = datetime(2026, 11, 30, 12, 0, 5, 250000, tzinfo=UTC)
    with tenant_context(stores.a):
        recent.recent_events_push(
            stores.a.schema_name,
            [_row("c1", 1, newest), _row("c1", 2, newest - timedelta(seconds=5))],
        )
        recent.recent_events_push(stores.a.schema_name, [_row("c1", 3, newest - timedelta(days=1))])
        latest = redis_client().get(recent.recent_latest_key("c1"))

    # then the key holds the newest timestamp (and the 3 events pushed), which the cut-off
    # check compares exactly
    assert latest == b"%.6f 3" % newest.timestamp()
    assert recent.recent_is_new(latest, newest.timestamp() - 0.001)
    assert not recent.recent_is_new(latest, newest.timestamp())
    assert not recent.recent_is_new(None, 0.0)


def test_events_through_a_linked_session_move_the_shoppers_newest_event_time(stores):
    # given a session linked to shopper c2, then an anonymous event of that session
    moment = timezone.now()
    with tenant_context(stores.a):
        recent.recent_events_push(stores.a.schema_name, [_row("c2", 1, moment, "sess-c2")])
        later = moment + timedelta(seconds=3)
        recent.recent_events_push(
            stores.a.schema_name,
            [("cost-anon-1", None, "a2", "view", None, later, None, "sess-c2", None)],
        )
        latest = redis_client().get(recent.recent_latest_key("c2"))

    # then the shopper's newest-event time is the anonymous event's (2 events pushed)
    assert latest == b"%.6f 2" % later.timestamp()


def test_nothing_new_since_training_reads_no_recent_list(
    stores, key_client, monkeypatch, django_capture_on_commit_callbacks
):
    # given shopper 21 with no event since training (a recent list older than the cut-off)
    client = key_client(stores.a, scopes=("ingest", "recommend"))
    with tenant_context(stores.a):
        recent.recent_events_push(
            stores.a.schema_name, [_row("21", 1, datetime(2001, 1, 1, tzinfo=UTC))]
        )
    reads = []
    original = shopper.recent_from_reply
    monkeypatch.setattr(shopper, "recent_from_reply", lambda *a: reads.append(a) or original(*a))

    # when their list is asked for
    untouched = client.get(LIST.format(21)).json()

    # then it is the precomputed list, and the recent events were neither read nor parsed
    assert not untouched["strategy"].endswith("+fresh")
    assert reads == []

    # and when they send an event, the next answer reads them and is re-scored
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/events/bulk",
            [{"event_id": "cost-21-new", "user_id": "21", "item_id": "a300", "type": "view",
              "timestamp": timezone.now().isoformat()}],
            content_type="application/json",
        )  # fmt: skip
    assert response.status_code == 202
    assert client.get(LIST.format(21)).json()["strategy"].endswith("+fresh")
    assert len(reads) == 1


def test_a_current_re_scored_list_is_served_without_reading_the_events_until_the_next_one(
    stores, key_client, monkeypatch, django_capture_on_commit_callbacks
):
    # given shopper 23's list re-scored after a view
    client = key_client(stores.a, scopes=("ingest", "recommend"))
    now = timezone.now()

    def post(event_id: str, item_id: str, kind: str, moment: datetime) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/api/v1/events/bulk",
                [{"event_id": event_id, "user_id": "23", "item_id": item_id, "type": kind,
                  "timestamp": moment.isoformat()}],
                content_type="application/json",
            )  # fmt: skip
        assert response.status_code == 202

    post("cost-23-1", "a300", "view", now)
    first = client.get(LIST.format(23)).json()
    assert first["strategy"].endswith("+fresh")
    reads = []
    original = shopper.recent_from_reply
    monkeypatch.setattr(shopper, "recent_from_reply", lambda *a: reads.append(a) or original(*a))

    # when it is asked for again: the cached list, without reading the recent events
    again = client.get(LIST.format(23)).json()
    assert again["items"] == first["items"]
    assert reads == []

    # and when they buy its first item with an older timestamp (a late event, still after
    # training), the next answer reads the events again and leaves that item out
    bought = first["items"][0]["item_id"]
    post("cost-23-2", bought, "purchase", now - timedelta(seconds=30))
    after = client.get(LIST.format(23)).json()
    assert len(reads) == 1
    assert bought not in [row["item_id"] for row in after["items"]]
    # served again from the cache, the bought item still left out
    cached = client.get(LIST.format(23)).json()
    assert len(reads) == 1
    assert cached["items"] == after["items"]


def _count_re_scorings(monkeypatch, delay: float = 0.0) -> list[str]:
    """Every re-scoring from now on (the shopper's id), each taking at least `delay` s."""
    calls: list[str] = []
    original = FreshServing.recommend_fresh

    def counted(model, user_id, *args, **kwargs):
        calls.append(user_id)
        time.sleep(delay)
        return original(model, user_id, *args, **kwargs)

    monkeypatch.setattr(FreshServing, "recommend_fresh", counted)
    return calls


def test_requests_arriving_together_after_an_event_re_score_the_list_once(stores, monkeypatch):
    # given shopper 25 with a new event, and a re-scoring that takes 20 ms
    schema = stores.a.schema_name
    with tenant_context(stores.a):
        recommend_for_shopper(user_id="25", filters=Filters(k=5), log=False)  # warm
        recent.recent_events_push(schema, [_row("25", 1, timezone.now())])
    calls = _count_re_scorings(monkeypatch, delay=0.02)
    start = threading.Barrier(4)

    def ask() -> tuple[str, list]:
        start.wait()
        with tenant_context(stores.a):
            served = recommend_for_shopper(user_id="25", filters=Filters(k=5), log=False)
        return served.strategy, served.items

    # when four requests for their list arrive at once (two widgets on two tabs)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: ask(), range(4)))

    # then one of them re-scored it and every one answered that list
    assert calls == ["25"]
    assert all(strategy.endswith("+fresh") for strategy, _ in answers)
    assert all(items == answers[0][1] for _, items in answers)
    assert redis_client().get(rcache.fresh_claim_key(schema, "25")) is None


def test_a_claim_left_by_a_request_that_died_delays_the_list_but_does_not_stop_it(
    stores, monkeypatch
):
    # given shopper 26 with a new event, and a claim on their list that nobody will honour
    schema = stores.a.schema_name
    with tenant_context(stores.a):
        recent.recent_events_push(schema, [_row("26", 1, timezone.now())])
    redis_client().set(rcache.fresh_claim_key(schema, "26"), "gone", px=10_000)
    calls = _count_re_scorings(monkeypatch)

    # when their list is asked for
    started = time.monotonic()
    with tenant_context(stores.a):
        served = recommend_for_shopper(user_id="26", filters=Filters(k=5), log=False)

    # then it is re-scored after waiting for the claimed one, and the claim is given back
    assert served.strategy.endswith("+fresh")
    assert calls == ["26"]
    assert time.monotonic() - started >= fresh.FRESH_WAIT_SECONDS
    assert redis_client().get(rcache.fresh_claim_key(schema, "26")) is None
