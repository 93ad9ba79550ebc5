"""Cross-app notification hooks: training, activation, members joining, API keys expiring, the
per-store nightly training schedule, and the entry points' thread settings.

Each hook writes its in-app rows in the transaction of the state change and leaves pushes,
emails and webhook deliveries to on_commit; a rolled-back change notifies nobody."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from asgiref.sync import async_to_sync
from celery.schedules import crontab
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
from django.conf import settings
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_tenants.utils import tenant_context

from apps.apikeys.models import ApiKey
from apps.apikeys.services import api_key_revoke, api_keys_expiry_notify
from apps.apikeys.tasks import api_keys_expiry_notify as expiry_task
from apps.catalog.services import events_ingest
from apps.core.errors import ApplicationError
from apps.core.live import store_group
from apps.notifications.kinds import Channel
from apps.notifications.models import Notification
from apps.notifications.services import notification_preferences_set
from apps.recommendations import services as recs
from apps.recommendations.models import ModelVersion
from apps.tenants.services import store_schedules_ensure, tenant_create
from apps.users.services import invitation_accept, membership_invite
from tests.factories import MembershipFactory, ModelVersionFactory, UserFactory, api_key_for
from tests.notifications.test_webhooks import committed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("growth_stores")]

TINY_CONFIG = {"search": False, "time_budget_seconds": 1, "als": {"factors": 8, "iterations": 2}}


def rows(tenant) -> list[tuple]:
    """(user_id, kind, severity, title, link) of the store's notifications, oldest first."""
    with tenant_context(tenant):
        return list(
            Notification.objects.order_by("id").values_list(
                "user_id", "kind", "severity", "title", "link"
            )
        )


@pytest.fixture
def store_listener(alpha):
    """`store_listener()` joins a new channel to alpha's dashboard group; its `.messages()`
    returns what arrived since, once (a channel layer's receive binds to one event loop)."""
    joined = []

    def listen():
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(store_group(alpha.schema_name), channel)
        joined.append((layer, channel))

        async def receive_all() -> list[dict]:
            received = []
            while True:
                try:
                    message = await asyncio.wait_for(layer.receive(channel), timeout=0.5)
                except TimeoutError:
                    return received
                received.append(message["payload"])

        return SimpleNamespace(messages=async_to_sync(receive_all))

    yield listen
    for layer, channel in joined:
        async_to_sync(layer.group_discard)(store_group(alpha.schema_name), channel)


def _members(tenant, **roles: str) -> dict[str, int]:
    """{name: user id} of new members of `tenant`, one per name=role."""
    return {
        name: MembershipFactory(
            tenant=tenant, user=UserFactory(email=f"{name}@{tenant.slug}.test"), role=role
        ).user_id
        for name, role in roles.items()
    }


def _ingest_a_few_events() -> None:
    now = timezone.now()
    result = events_ingest(
        rows=[
            {
                "user_id": f"u{n % 3}",
                "item_id": f"alpha-{n % 4}",
                "type": "purchase",
                "timestamp": now - timedelta(minutes=n + 1),
            }
            for n in range(8)
        ]
    )
    assert result.errors == []


# --- recommendations ------------------------------------------------------------------------------


def test_finished_training_notifies_every_member_in_its_transaction(
    alpha, beta, settings, tmp_path, django_capture_on_commit_callbacks
):
    # given alpha with an owner and an analyst, and too few events to beat popularity
    settings.MEDIA_ROOT = str(tmp_path)
    ids = _members(alpha, owner="owner", analyst="analyst")
    with tenant_context(alpha):
        _ingest_a_few_events()
        version = recs.model_version_start(actor_label="test", config=TINY_CONFIG, dispatch=False)

        # when the training runs to the end
        with django_capture_on_commit_callbacks() as callbacks:
            version = recs.model_version_train(version_id=version.pk, precompute="none")

    # then both members have one `training.finished` notification (not activated: no
    # `model.activated`), and the push waits for the commit
    assert version.status == ModelVersion.Status.READY
    title = f"Model v{version.number} trained"
    assert rows(alpha) == [
        (ids["owner"], "training.finished", "info", title, "/models/"),
        (ids["analyst"], "training.finished", "info", title, "/models/"),
    ]
    with tenant_context(alpha):
        stored = Notification.objects.filter(user_id=ids["owner"]).get()
    assert stored.body == f"{version.activation_note} Strategy: {version.strategy}."
    assert stored.data == {"number": version.number, "ndcg@10": version.ndcg, "activated": False}
    assert len(callbacks) == 2  # the notification push, the dashboard's training.finished push
    assert rows(beta) == []
    assert mail.outbox == []  # training.finished is in-app only by default


def test_failed_training_notifies_critical_and_delivers_only_after_commit(
    alpha,
    settings,
    tmp_path,
    eager_celery,
    store_listener,
    django_capture_on_commit_callbacks,
):
    # given a storage the artifact cannot be written to, an owner (email on by default for
    # training.failed) and a developer who turned that email off
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    settings.MEDIA_ROOT = str(blocker)
    ids = _members(alpha, owner="owner", dev="developer")
    with tenant_context(alpha):
        notification_preferences_set(
            user=UserFactory(email="dev@alpha.test"),
            choices={("training.failed", Channel.EMAIL): False},
        )
        _ingest_a_few_events()
        version = recs.model_version_start(actor_label="test", config=TINY_CONFIG, dispatch=False)

        # when the training fails
        before_commit = store_listener()
        with django_capture_on_commit_callbacks() as callbacks:
            version = recs.model_version_train(version_id=version.pk, precompute="none")

    # then the rows exist in the transaction, but nothing has left yet
    assert version.status == ModelVersion.Status.FAILED
    title = f"Training of v{version.number} failed"
    assert rows(alpha) == [
        (ids["owner"], "training.failed", "critical", title, "/models/"),
        (ids["dev"], "training.failed", "critical", title, "/models/"),
    ]
    assert mail.outbox == []
    # (training progress is live by design; nothing about the outcome has been pushed)
    assert [m["type"] for m in before_commit.messages()] == ["training.progress"] * 4

    # when the transaction commits
    after_commit = store_listener()
    for callback in callbacks:
        callback()

    # then the owner alone is emailed, and the live push names both recipients
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["owner@alpha.test"], f"[Alpha Store] {title}")
    ]
    assert "http://alpha.localhost/models/" in mail.outbox[0].body
    with tenant_context(alpha):
        by_user = dict(Notification.objects.values_list("user_id", "pk"))
    pushed = [m for m in after_commit.messages() if m["type"] == "notification"]
    assert [(m["kind"], m["severity"], m["title"], m["recipients"]) for m in pushed] == [
        (
            "training.failed",
            "critical",
            title,
            {str(ids["owner"]): by_user[ids["owner"]], str(ids["dev"]): by_user[ids["dev"]]},
        )
    ]


def _version(number: int, ndcg: float) -> ModelVersion:
    return ModelVersionFactory(
        number=number,
        metrics={"final": {"ndcg@10": ndcg, "strategy": "als+rerank"}},
        artifact_path=f"models/store_alpha/{number}",
    )


def test_activation_and_rollback_notify_model_activated(alpha, django_capture_on_commit_callbacks):
    # given two trained versions of alpha and its owner
    ids = _members(alpha, owner="owner")
    with tenant_context(alpha):
        v1, v2 = _version(1, 0.21), _version(2, 0.25)

        # when v1 then v2 are activated, then the store rolls back
        with django_capture_on_commit_callbacks():
            recs.model_version_activate(version=v1, actor_label="test", precompute="none")
            recs.model_version_activate(version=v2, actor_label="test", precompute="none")
            recs.model_version_rollback(actor_label="test", precompute="none")
        notes = list(
            Notification.objects.order_by("id").values_list("severity", "title", "body", "data")
        )

    # then one model.activated notification each, the rollback as a warning
    assert rows(alpha) == [
        (ids["owner"], "model.activated", "info", "Model v1 is now active", "/models/"),
        (ids["owner"], "model.activated", "info", "Model v2 is now active", "/models/"),
        (ids["owner"], "model.activated", "warning", "Rolled back to model v1", "/models/"),
    ]
    assert [body for _, _, body, _ in notes] == [
        "NDCG@10 0.2100. Reason: manual.",
        "NDCG@10 0.2500. It replaces v1. Reason: manual.",
        "NDCG@10 0.2100. It replaces v2. Reason: rollback from v2.",
    ]
    assert notes[2][3] == {"number": 1, "previous": 2, "rollback": True}


def test_a_rolled_back_activation_notifies_nobody(alpha, django_capture_on_commit_callbacks):
    # given a ready version and an owner
    _members(alpha, owner="owner")
    with tenant_context(alpha):
        version = _version(1, 0.2)

        # when the activation's transaction rolls back
        def activate_then_fail() -> None:
            with transaction.atomic():
                recs.model_version_activate(version=version, actor_label="t", precompute="none")
                raise RuntimeError("a later step of the same transaction failed")

        with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError):
            activate_then_fail()
        version.refresh_from_db()

    # then no row, no push, no email, and the version is still only ready
    assert rows(alpha) == []
    assert callbacks == []
    assert mail.outbox == []
    assert version.status == ModelVersion.Status.READY


# --- members ------------------------------------------------------------------------------------


def test_member_joined_notifies_the_owners_and_admins_only(
    alpha, beta, django_capture_on_commit_callbacks
):
    # given alpha with an owner, an admin and a developer, and an invitation to an analyst
    ids = _members(alpha, owner="owner", admin="admin", dev="developer")
    _members(beta, owner="owner")
    owner = UserFactory(email="owner@alpha.test")
    with django_capture_on_commit_callbacks():
        invitation = membership_invite(
            tenant=alpha, email="newbie@x.test", role="analyst", acting_user=owner
        )
    newbie = UserFactory(email="newbie@x.test")

    # when the invitation is accepted
    with django_capture_on_commit_callbacks() as callbacks:
        membership = invitation_accept(invitation=invitation, acting_user=newbie)

    # then the owner and the admin are told, in alpha only, with one push after commit
    title = "newbie@x.test joined the store"
    assert rows(alpha) == [
        (ids["owner"], "member.joined", "info", title, "/team/"),
        (ids["admin"], "member.joined", "info", title, "/team/"),
    ]
    with tenant_context(alpha):
        assert list(Notification.objects.order_by().values_list("body", "data").distinct()) == [
            (
                "newbie@x.test accepted the invitation and joined Alpha Store as analyst.",
                {"email": "newbie@x.test", "role": "analyst", "membership": membership.pk},
            )
        ]
    assert rows(beta) == []
    assert len(callbacks) == 1
    assert mail.outbox[1:] == []  # only the invitation email; member.joined is in-app only


def test_a_refused_acceptance_notifies_nobody(alpha, django_capture_on_commit_callbacks):
    # given an invitation for someone else
    _members(alpha, owner="owner")
    with django_capture_on_commit_callbacks():
        invitation = membership_invite(
            tenant=alpha,
            email="newbie@x.test",
            role="analyst",
            acting_user=UserFactory(email="owner@alpha.test"),
        )

    # when another account tries to accept it
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(ApplicationError):
        invitation_accept(invitation=invitation, acting_user=UserFactory(email="mallory@x.test"))

    # then nothing was notified or scheduled
    assert rows(alpha) == []
    assert callbacks == []


# --- API keys expiring ----------------------------------------------------------------------------


def test_expiring_keys_notify_key_managers_once_per_key(
    alpha, beta, django_capture_on_commit_callbacks
):
    # given alpha's keys: one expiring in 3 days, one in 10, a revoked one in 2, one without
    # expiry; and beta's key expiring in 1 day
    ids = _members(alpha, owner="owner", dev="developer", analyst="analyst")
    now = timezone.now()
    soon, _ = api_key_for(alpha, name="Checkout", expires_at=now + timedelta(days=3))
    api_key_for(alpha, name="Later", expires_at=now + timedelta(days=10))
    revoked, _ = api_key_for(alpha, name="Old", expires_at=now + timedelta(days=2))
    api_key_for(alpha, name="Forever")
    api_key_for(beta, name="Beta", expires_at=now + timedelta(days=1))
    with tenant_context(alpha):
        api_key_revoke(api_key=revoked)

        # when the daily check runs in alpha, twice
        with django_capture_on_commit_callbacks() as callbacks:
            first = api_keys_expiry_notify(now=now)
            second = api_keys_expiry_notify(now=now + timedelta(days=1))
        soon.refresh_from_db()
        body = Notification.objects.values_list("body", flat=True).first()

    # then the key expiring in 3 days is notified once, to the members managing keys
    expires = soon.expires_at.astimezone(UTC)
    title = f'API key "Checkout" expires on {expires:%Y-%m-%d}'
    assert [key.pk for key in first] == [soon.pk]
    assert second == []
    assert soon.expiry_notified_at == now
    assert rows(alpha) == [
        (ids["owner"], "api_key.expiring", "warning", title, "/api-keys/"),
        (ids["dev"], "api_key.expiring", "warning", title, "/api-keys/"),
    ]
    assert body == (
        f"The key {soon.prefix} stops working at {expires:%Y-%m-%d %H:%M} UTC. "
        "Create a new key and switch your integration to it before then."
    )
    # the push (one) and the two emails (api_key.expiring emails by default)
    assert len(callbacks) == 3
    assert rows(beta) == []
    with tenant_context(beta):
        assert ApiKey.objects.filter(expiry_notified_at__isnull=False).count() == 0


def test_expiry_check_refuses_the_public_schema():
    with pytest.raises(ApplicationError) as raised:
        api_keys_expiry_notify()
    assert raised.value.code == "no_store"


def test_expiry_check_is_a_daily_beat_entry_for_every_store():
    entry = settings.CELERY_BEAT_SCHEDULE["api-keys-expiry-notify"]
    # no "tenant_schemas": the tenant-aware scheduler sends it once into each store's schema
    assert entry == {
        "task": "apps.apikeys.tasks.api_keys_expiry_notify",
        "schedule": crontab(minute=0, hour=8),
    }
    assert expiry_task.name == entry["task"]


def test_expiry_task_runs_in_the_store_it_was_sent_for(committed_store, notifications_worker):
    # given the committed store with a key expiring in two days
    tenant, _ = committed_store

    def given():
        api_key_for(tenant, name="Soon", expires_at=timezone.now() + timedelta(days=2))

    committed(given)

    # when the task is sent from that store, then again, then from alpha
    with tenant_context(tenant):
        first = expiry_task.delay().get(timeout=20)
        again = expiry_task.delay().get(timeout=20)
    connection.set_schema_to_public()

    # then the worker notified that one key once, in that store
    assert (first, again) == (1, 0)

    def notified():
        with tenant_context(tenant):
            return list(
                Notification.objects.filter(kind="api_key.expiring").values_list("title", flat=True)
            )

    assert len(committed(notified)) == 1


# --- nightly training schedule ------------------------------------------------------------------


def _nightly(tenant) -> list[tuple[str, str, str]]:
    with tenant_context(tenant):
        return list(
            PeriodicTask.objects.filter(task=recs.NIGHTLY_TASK).values_list("name", "task", "queue")
        )


def test_a_new_store_gets_its_nightly_training_after_commit(
    beta, django_capture_on_commit_callbacks
):
    # when a store is created
    with django_capture_on_commit_callbacks() as callbacks:
        tenant = tenant_create(slug="wired", name="Wired Store")

    # then its schedule appears only once the creation commits, in its own schema (no queue of
    # its own: CELERY_TASK_ROUTES sends it to this deployment's training queue)
    assert _nightly(tenant) == []
    for callback in callbacks:
        callback()
    assert _nightly(tenant) == [
        ("recommendations-nightly-training@store_wired", recs.NIGHTLY_TASK, None)
    ]
    assert _nightly(beta) == [
        ("recommendations-nightly-training@store_beta", recs.NIGHTLY_TASK, None)
    ]


def test_setup_platform_schedules_existing_stores(alpha, beta):
    # given alpha lost its schedule
    with tenant_context(alpha):
        PeriodicTask.objects.filter(task=recs.NIGHTLY_TASK).delete()

    # when the platform is set up again
    from django.core.management import call_command

    call_command("setup_platform", verbosity=0)

    # then every store has exactly one nightly entry again
    assert _nightly(alpha) == [
        ("recommendations-nightly-training@store_alpha", recs.NIGHTLY_TASK, None)
    ]
    assert len(_nightly(beta)) == 1


def test_the_public_schema_gets_no_store_schedule(alpha):
    from apps.tenants.models import Tenant

    with pytest.raises(ApplicationError):
        store_schedules_ensure(tenant=Tenant.objects.get(schema_name="public"))


# --- thread settings of the entry points ----------------------------------------------------------


@pytest.mark.parametrize("module", ["manage", "config.celery", "config.wsgi", "config.asgi"])
def test_entry_points_pin_numeric_threads_before_numpy_loads(module):
    # given a process environment without any thread setting
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}
    }
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    script = (
        "import importlib, json, os\n"
        f"importlib.import_module({module!r})\n"
        "import numpy, lightgbm\n"
        "from threadpoolctl import threadpool_info\n"
        "print(json.dumps({'env': [os.environ[k] for k in "
        "('OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')], "
        "'blas': sorted({p['num_threads'] for p in threadpool_info() "
        "if p['user_api'] == 'blas'})}))"
    )

    # when the entry point is imported first, then numpy and LightGBM
    done = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", script],
        cwd=Path(settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    # then the variables are set and every BLAS pool has one thread (OpenMP stays free for ALS)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"env": ["1", "1"], "blas": [1]}
