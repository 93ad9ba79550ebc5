"""Training, activation, rollback, the lock, progress, schedule and commands."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django_celery_beat.models import PeriodicTask
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.core.cache import redis_client
from apps.core.errors import ApplicationError
from apps.recommendations import cache as rcache
from apps.recommendations import services
from apps.recommendations.models import ModelVersion
from apps.recommendations.training import activation_decision
from tests.recommendations.conftest import TINY_CONFIG, train_now

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("growth_stores")]


def metrics(final: float, popularity: float, strategy: str = "als+rerank") -> dict:
    return {
        "final": {"ndcg@10": final, "strategy": strategy},
        "popularity": {"ndcg@10": popularity},
    }


@pytest.mark.parametrize(
    ("given", "active", "expected"),
    [
        (metrics(0.20, 0.10), None, True),
        (metrics(0.10, 0.10), None, False),
        (metrics(0.20, 0.10, strategy="popularity"), None, False),
        (metrics(0.20, 0.10), 0.215, True),  # within the 0.02 tolerance
        (metrics(0.20, 0.10), 0.23, False),  # worse than the active model beyond it
        ({"final": {"strategy": "popularity", "reason": "too little data"}}, None, False),
    ],
)
def test_activation_rule(given, active, expected):
    activate, _ = activation_decision(given, active_ndcg=active, tolerance=0.02)
    assert activate is expected


def test_training_publishes_progress_to_the_store_group(stores):
    stages = [
        (m["stage"], m["percent"]) for m in stores.progress if m["type"] == "training.progress"
    ]
    assert stages[0] == ("reading", 0)
    assert ("saving", 92) in stages
    assert [p for _, p in stages] == sorted(p for _, p in stages)
    assert {m["model_version"] for m in stores.progress if "model_version" in m} == {
        stores.version_a.pk
    }
    assert stores.progress[-1]["type"] in {"training.finished", "model.activated"}


def test_trained_version_records_its_run(stores, media_root):
    version = stores.version_a
    assert version.status == ModelVersion.Status.ACTIVE
    assert version.artifact_path == f"models/{stores.a.schema_name}/1"
    assert (media_root / version.artifact_path / "manifest.json").exists()
    assert version.counts["events"] == len(stores.data.ratings)
    assert version.counts["shoppers"] == 120
    assert version.metrics["final"]["ndcg@10"] > version.metrics["popularity"]["ndcg@10"]
    assert version.window_end is not None


def test_a_failed_training_keeps_the_active_model(stores, key_client):
    # given store A serving v1, and a training the engine rejects halfway
    with tenant_context(stores.a):
        bad = {**TINY_CONFIG, "als": {"weighting": "no-such-weighting"}}
        failed = train_now(bad)
        active = ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE)
        audited = AuditEvent.objects.filter(action="model.training_failed").count()
    connection.set_schema_to_public()

    # then the new version failed with the reason and v1 still serves
    assert failed.status == ModelVersion.Status.FAILED
    assert "no-such-weighting" in failed.error
    assert failed.artifact_path == ""
    assert active.pk == stores.version_a.pk
    assert audited == 1
    response = key_client(stores.a).get("/api/v1/recommendations/users/7")
    assert response.json()["model_version"] == stores.version_a.label


def test_one_training_per_store_at_a_time(stores):
    with tenant_context(stores.a):
        services.model_version_start(actor_label="test", config=TINY_CONFIG, dispatch=False)
        before = ModelVersion.objects.count()

        with pytest.raises(ApplicationError) as raised:
            services.model_version_start(actor_label="test", config=TINY_CONFIG, dispatch=False)

        assert raised.value.code == "training_in_progress"
        assert raised.value.status_code == 409
        assert ModelVersion.objects.count() == before


def test_too_little_data_leaves_the_store_on_the_fallback(alpha, key_client):
    # given a store with a handful of events
    from apps.catalog.services import events_ingest
    from tests.recommendations.test_serving_api import _recent

    with tenant_context(alpha):
        events_ingest(
            rows=[
                {
                    "user_id": f"u{n % 3}",
                    "item_id": f"alpha-{n % 4}",
                    "type": "purchase",
                    "timestamp": _recent(n),
                }
                for n in range(8)
            ]
        )
        version = train_now()
    connection.set_schema_to_public()

    # then the version is ready, not active, and the API serves popularity from PostgreSQL
    assert version.status == ModelVersion.Status.READY
    assert version.activation_note.startswith("Not activated")
    response = key_client(alpha).get("/api/v1/recommendations/users/u0?k=3")
    assert response.status_code == 200
    assert response.json()["model_version"] == "none"
    assert response.json()["strategy"] == "popularity"


def test_activation_and_rollback_switch_serving_and_are_audited(
    stores, key_client, django_capture_on_commit_callbacks
):
    client = key_client(stores.a)
    with tenant_context(stores.a):
        # given a second ready version (same artifact folder layout as a training makes)
        v1 = ModelVersion.objects.get(pk=stores.version_a.pk)
        v2 = ModelVersion.objects.create(
            number=2,
            status=ModelVersion.Status.READY,
            artifact_path=v1.artifact_path,
            metrics=v1.metrics,
            strategy=v1.strategy,
        )
        # when it is activated
        with django_capture_on_commit_callbacks(execute=True):
            services.model_version_activate(version=v2, actor_label="test", precompute="none")
        connection.set_schema_to_public()
        served_v2 = client.get("/api/v1/recommendations/users/7").json()["model_version"]
        # and rolled back
        with tenant_context(stores.a), django_capture_on_commit_callbacks(execute=True):
            services.model_version_rollback(actor_label="test", precompute="none")
        connection.set_schema_to_public()
        served_after = client.get("/api/v1/recommendations/users/7").json()["model_version"]
        with tenant_context(stores.a):
            actions = list(
                AuditEvent.objects.filter(action__in=["model.activated", "model.rolled_back"])
                .order_by("id")
                .values_list("action", "target_id")
            )
            statuses = dict(ModelVersion.objects.values_list("number", "status"))

    assert served_v2 == "v2"
    assert served_after == "v1"
    assert actions[-2:] == [("model.activated", "2"), ("model.rolled_back", "1")]
    assert statuses[1] == "active"
    assert statuses[2] == "retired"


def test_rollback_without_a_previous_version_is_409(alpha):
    with tenant_context(alpha), pytest.raises(ApplicationError) as raised:
        services.model_version_rollback(actor_label="test")
    assert raised.value.code == "no_previous_version"


def test_precompute_wrote_the_recent_shoppers_lists(stores, settings):
    # The shoppers whose last rating lies within RECS_PRECOMPUTE_ACTIVE_DAYS of the newest one.
    last_rated: dict[str, int] = {}
    for user_id, _, _, ts in stores.data.ratings:
        last_rated[user_id] = max(ts, last_rated.get(user_id, ts))
    since = max(last_rated.values()) - settings.RECS_PRECOMPUTE_ACTIVE_DAYS * 24 * 3600
    recent = {user_id for user_id, ts in last_rated.items() if ts >= since}

    pattern = rcache.list_key(stores.a.schema_name, stores.version_a.pk, "*")
    client = redis_client()
    # Earlier tests' requests cache lists of other shoppers on demand: start from none.
    for key in client.scan_iter(match=pattern, count=1000):
        client.delete(key)

    with tenant_context(stores.a):
        report = services.recommendations_precompute(version_id=stores.version_a.pk)
    keys = client.scan_iter(match=pattern, count=1000)

    assert (report.shoppers, report.complete) == (len(recent), True)
    assert sorted(key.decode().rsplit(":", 1)[1] for key in keys) == sorted(recent)


def test_nightly_schedule_is_a_periodic_task_in_the_store_schema(alpha):
    with tenant_context(alpha):
        first = services.training_schedule_ensure(hour=3, minute=15)
        again = services.training_schedule_ensure()
        tasks = list(
            PeriodicTask.objects.filter(task=services.NIGHTLY_TASK).select_related("crontab")
        )

    assert first.pk == again.pk
    assert len(tasks) == 1
    assert tasks[0].name == "recommendations-nightly-training@store_alpha"
    assert (tasks[0].crontab.hour, tasks[0].crontab.minute) == ("3", "15")


def test_shopper_erasure_removes_cached_lists(stores):
    key = rcache.list_key(stores.b.schema_name, stores.version_b.pk, "erase-me")
    redis_client().set(key, b"[]")
    with tenant_context(stores.b):
        removed = services.shopper_recommendations_forget(user_id="erase-me")
    assert removed == 1
    assert redis_client().exists(key) == 0


def test_evaluate_models_prints_the_metrics_table(stores):
    out = StringIO()
    call_command("evaluate_models", tenant="recs-b", stdout=out)
    text = out.getvalue()
    assert "v1  active" in text
    assert "final (als+rerank)" in text or "final (als)" in text
    assert "popularity" in text
    assert "serving: v1" in text


def test_train_models_sync_command(alpha):
    out = StringIO()
    call_command("train_models", tenant="alpha", sync=True, config='{"search": false}', stdout=out)
    assert "alpha: training v1..." in out.getvalue()
    assert "alpha: serving fallback (no model)" in out.getvalue()
    with tenant_context(alpha):
        assert ModelVersion.objects.filter(number=1, status="ready").exists()


def test_train_models_trains_here_when_no_worker_takes_the_queued_task(alpha):
    # given a platform whose training queue nobody consumes (the test never commits, so the
    # queued task is not even sent)
    out = StringIO()

    # when the staff command queues the training and follows it
    call_command(
        "train_models", tenant="alpha", config='{"search": false}', pickup_timeout=0.5, stdout=out
    )

    # then it trains in this process after the pickup timeout and reports the outcome
    text = out.getvalue()
    assert "alpha: training of v1 queued." in text
    assert "alpha: no worker took v1 within 0.5s; training in this process." in text
    with tenant_context(alpha):
        assert ModelVersion.objects.get(number=1).status == "ready"


def test_train_models_no_wait_only_queues(alpha):
    out = StringIO()

    call_command("train_models", tenant="alpha", no_wait=True, stdout=out)

    assert out.getvalue().splitlines() == ["alpha: training of v1 queued."]
    with tenant_context(alpha):
        assert ModelVersion.objects.get(number=1).status == "training"


def test_orders_drive_bought_together(alpha, key_client, django_capture_on_commit_callbacks):
    # given a store whose shoppers buy basket-0 and, three hours later, basket-1 in one order,
    # and five minutes after its first line a second order of basket-2 and basket-3
    from datetime import timedelta

    from django.utils import timezone

    from apps.catalog.services import events_ingest
    from tests.factories import ItemFactory
    from tests.recommendations.test_serving_api import items_of

    start = timezone.now() - timedelta(days=2)

    def line(user: int, item: int, order: str, minutes: int) -> dict:
        at = start + timedelta(hours=user, minutes=minutes)
        return {
            "user_id": f"u{user}",
            "item_id": f"basket-{item}",
            "type": "purchase",
            "order_id": f"{order}-{user}",
            "timestamp": at.isoformat(),
        }

    with tenant_context(alpha):
        for n in range(4):
            ItemFactory(item_id=f"basket-{n}")
        rows = []
        for user in range(12):
            rows += [
                line(user, 0, "first", 0),
                line(user, 2, "second", 5),
                line(user, 3, "second", 5),
                line(user, 1, "first", 180),
            ]
        events_ingest(rows=rows)
        version = train_now()
        # when that version serves (activation is not what this test is about)
        with django_capture_on_commit_callbacks(execute=True):
            services.model_version_activate(version=version, actor_label="test", precompute="none")
    connection.set_schema_to_public()
    response = key_client(alpha).get("/api/v1/recommendations/items/basket-0/bought-together?k=1")

    # then the item bought with it is the one from its order, not those from the same minutes
    # (time-window sessions would pair basket-0 with basket-2 and basket-3 only)
    assert response.status_code == 200
    assert items_of(response) == ["basket-1"]
    assert response.json()["strategy"].startswith("cooccurrence")
