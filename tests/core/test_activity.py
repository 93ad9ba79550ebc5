"""Periodic work goes to the stores that had activity, not to every store (apps/core/activity):
the write paths mark the store in the pipeline they already send, one public-schema task sends
the per-store task to the stores marked, and a store whose work was not finished is marked
again. Messages are read back from the real broker; Redis and PostgreSQL are real."""

from __future__ import annotations

import time

import pytest
from django_tenants.utils import tenant_context

from apps.core.activity import Activity, activity_key, store_mark_active
from apps.core.cache import redis_client, tenant_key
from apps.notifications import anomaly
from apps.notifications.tasks import usage_anomaly_scan_dispatch
from apps.recommendations import impressions
from apps.recommendations.cache import impressions_key, lock_key
from apps.recommendations.models import Impression
from apps.recommendations.tasks import impressions_persist, impressions_persist_dispatch
from config.celery import app
from tests.workers import queue_names

pytestmark = pytest.mark.django_db

PERSIST = "recommendations.impressions_persist"
SCAN = "apps.notifications.tasks.usage_anomaly_scan"


@pytest.fixture
def quiet_platform(alpha, beta):
    """No marks, no impressions waiting, the hourly sweep done, empty test queues."""
    client = redis_client()
    # Lists earlier tests served and left in this process's buffer go to Redis first, then go.
    impressions.impressions_flush()
    client.delete(activity_key(Activity.IMPRESSIONS), activity_key(Activity.API_TRAFFIC))
    client.set(tenant_key("activity", "swept", "impressions", schema_name="public"), 1, ex=3600)
    for store in (alpha, beta):
        client.delete(impressions_key(store.schema_name))
    _published()
    yield client
    client.delete(activity_key(Activity.IMPRESSIONS), activity_key(Activity.API_TRAFFIC))


def _published() -> list[tuple[str, str]]:
    """(task, _schema_name) of every message waiting on the test queues, taken off them."""
    found = []
    with app.connection_for_write() as conn:
        for name in queue_names():
            queue = app.amqp.queues[name].bind(conn.default_channel)
            queue.declare()
            while (message := queue.get(no_ack=True)) is not None:
                found.append((message.headers["task"], message.headers["_schema_name"]))
    return sorted(found)


def _log_impression(store, recommendation_id: str) -> None:
    impressions.impression_log(
        schema_name=store.schema_name,
        recommendation_id=recommendation_id,
        surface="api",
        user_id="shopper-1",
        model_version_number=None,
        strategy="popular",
        item_ids=[f"{store.slug}-only"],
    )


def _pending(client) -> set[str]:
    return {member.decode() for member in client.smembers(activity_key(Activity.IMPRESSIONS))}


def test_impressions_are_copied_for_the_stores_that_logged_some_only(quiet_platform, alpha):
    # given: alpha served two lists, beta nothing
    _log_impression(alpha, "rec-1")
    _log_impression(alpha, "rec-2")
    # Pushed by this flush or by the process's periodic flusher, whichever ran first.
    impressions.impressions_flush()
    assert quiet_platform.llen(impressions_key("store_alpha")) == 2
    assert _pending(quiet_platform) == {"store_alpha"}

    # when: beat's dispatcher runs (public schema)
    sent = impressions_persist_dispatch()

    # then: one copy task, into alpha's schema, and the mark is taken
    assert sent == 1
    assert _published() == [(PERSIST, "store_alpha")]
    assert _pending(quiet_platform) == set()

    # when: the task runs in alpha; then both rows are in alpha, the Redis list is empty
    with tenant_context(alpha):
        assert impressions_persist() == 2
        assert sorted(Impression.objects.values_list("recommendation_id", flat=True)) == [
            "rec-1",
            "rec-2",
        ]
    assert quiet_platform.llen(impressions_key("store_alpha")) == 0
    assert _pending(quiet_platform) == set()


def test_an_idle_platform_sends_nothing(quiet_platform):
    assert impressions_persist_dispatch() == 0
    assert usage_anomaly_scan_dispatch() == 0
    assert _published() == []


def test_a_store_whose_copy_is_held_by_another_run_is_marked_again(quiet_platform, alpha):
    # given: alpha has impressions waiting while another run holds alpha's copy lock
    _log_impression(alpha, "rec-held")
    impressions.impressions_flush()
    impressions_persist_dispatch()
    _published()
    lock = quiet_platform.lock(lock_key("store_alpha", "persist"), timeout=60)
    assert lock.acquire(blocking=False)
    try:
        # when: this run finds the lock taken
        with tenant_context(alpha):
            assert impressions_persist() == 0
    finally:
        lock.release()

    # then: alpha is marked again, and the next dispatch sends it
    assert _pending(quiet_platform) == {"store_alpha"}
    assert impressions_persist_dispatch() == 1
    assert _published() == [(PERSIST, "store_alpha")]


def test_a_store_with_more_than_one_run_can_copy_is_marked_again(
    quiet_platform, alpha, monkeypatch
):
    # given: three records waiting, a run copying at most two
    monkeypatch.setattr(impressions, "PERSIST_BATCH", 1)
    monkeypatch.setattr(impressions, "PERSIST_MAX_BATCHES", 2)
    for n in range(3):
        _log_impression(alpha, f"rec-{n}")
    impressions.impressions_flush()
    impressions_persist_dispatch()
    _published()

    # when: a run copies what it may; then the store is marked for the rest
    with tenant_context(alpha):
        assert impressions_persist() == 2
    assert _pending(quiet_platform) == {"store_alpha"}
    with tenant_context(alpha):
        assert impressions_persist() == 1
        assert Impression.objects.count() == 3


def test_a_failed_copy_marks_the_store_again(quiet_platform, alpha, monkeypatch):
    # given: alpha's impressions waiting, taken by the dispatcher
    _log_impression(alpha, "rec-fail")
    impressions.impressions_flush()
    impressions_persist_dispatch()
    _published()

    # when: the copy raises (a fault injected where the service is called)
    with tenant_context(alpha):

        def failing_copy():
            raise ConnectionError("PostgreSQL went away")

        monkeypatch.setattr(
            "apps.recommendations.services.impressions_persist_and_meter", failing_copy
        )
        with pytest.raises(ConnectionError):
            impressions_persist()

    # then: the store is marked again and its records are still in Redis
    assert _pending(quiet_platform) == {"store_alpha"}
    assert quiet_platform.llen(impressions_key("store_alpha")) == 1


def test_the_hourly_sweep_finds_a_store_whose_mark_was_lost(quiet_platform, beta):
    # given: records in beta's list without a mark (a dispatcher killed after taking it)
    quiet_platform.rpush(impressions_key("store_beta"), b'["r","api","u",null,"p",null,null,[],0]')
    quiet_platform.delete(tenant_key("activity", "swept", "impressions", schema_name="public"))

    # when / then: the first dispatch of the hour sends beta, the next does not sweep again
    assert impressions_persist_dispatch() == 1
    assert _published() == [(PERSIST, "store_beta")]
    assert impressions_persist_dispatch() == 0


def test_the_anomaly_scan_covers_stores_with_traffic_in_the_last_hour(quiet_platform, alpha):
    # given: alpha's API traffic written now; beta last seen 63 minutes ago
    now = time.time()
    anomaly._usage_write({("store_alpha", int(now) // 60): [5, 0, 0]})
    quiet_platform.zadd(activity_key(Activity.API_TRAFFIC), {"store_beta": now - 63 * 60})

    # when: beat's dispatcher runs
    sent = usage_anomaly_scan_dispatch()

    # then: alpha is scanned, beta is no longer watched (and forgotten)
    assert sent == 1
    assert _published() == [(SCAN, "store_alpha")]
    assert quiet_platform.zrange(activity_key(Activity.API_TRAFFIC), 0, -1) == [b"store_alpha"]


def test_a_store_that_went_quiet_is_still_scanned_within_the_hour(quiet_platform):
    # given: alpha's last request 59 minutes ago (the drop rule must see the silence)
    quiet_platform.zadd(activity_key(Activity.API_TRAFFIC), {"store_alpha": time.time() - 59 * 60})

    assert usage_anomaly_scan_dispatch() == 1
    assert _published() == [(SCAN, "store_alpha")]


def test_a_deleted_store_is_not_sent_and_the_public_schema_is_never_marked(quiet_platform):
    pipe = quiet_platform.pipeline()
    store_mark_active(pipe, Activity.IMPRESSIONS, ["public", "store_gone"])
    pipe.execute()

    assert _pending(quiet_platform) == {"store_gone"}
    assert impressions_persist_dispatch() == 0
    assert _published() == []
