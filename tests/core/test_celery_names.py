"""Every Celery task of ours has an explicit name, equal to the name it was registered under
before names were made explicit (queued messages and stored beat rows refer to it), and a
route by that exact name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.conf import settings
from django_celery_beat.models import PeriodicTask
from django_tenants.utils import tenant_context

from config.celery import app

APPS = Path(settings.BASE_DIR) / "apps"

# Wire name → (module, function, queue of base.py). Never change a name: rename the function.
WIRE_NAMES = {
    "apps.batchjobs.tasks.batch_job_chunk": ("apps.batchjobs.tasks", "batch_job_chunk", "batch"),
    "apps.batchjobs.tasks.batch_job_finish": ("apps.batchjobs.tasks", "batch_job_finish", "batch"),
    "apps.batchjobs.tasks.batch_job_start": ("apps.batchjobs.tasks", "batch_job_start", "batch"),
    "apps.apikeys.tasks.api_keys_expiry_notify": (
        "apps.apikeys.tasks",
        "api_keys_expiry_notify",
        "default",
    ),
    "apps.notifications.tasks.notification_email_send": (
        "apps.notifications.tasks",
        "notification_email_send",
        "default",
    ),
    "apps.notifications.tasks.usage_anomaly_scan": (
        "apps.notifications.tasks",
        "usage_anomaly_scan",
        "default",
    ),
    "apps.notifications.tasks.usage_anomaly_scan_dispatch": (
        "apps.notifications.tasks",
        "usage_anomaly_scan_dispatch",
        "default",
    ),
    "apps.notifications.tasks.webhook_deliver": (
        "apps.notifications.tasks",
        "webhook_deliver",
        "default",
    ),
    "apps.recommendations.tasks.precompute_recommendations": (
        "apps.recommendations.tasks",
        "precompute_recommendations",
        "training",
    ),
    "apps.recommendations.tasks.train_model_version": (
        "apps.recommendations.tasks",
        "train_model_version",
        "training",
    ),
    "apps.recommendations.tasks.train_nightly": (
        "apps.recommendations.tasks",
        "train_nightly",
        "training",
    ),
    "billing.stripe_event_process": ("apps.billing.tasks", "stripe_event_process_task", "default"),
    "billing.stripe_events_retry": ("apps.billing.tasks", "stripe_events_retry_task", "default"),
    "billing.usage_rollup_and_report": (
        "apps.billing.tasks",
        "usage_rollup_and_report_task",
        "default",
    ),
    "billing.usage_threshold_notify": (
        "apps.billing.tasks",
        "usage_threshold_notify_task",
        "default",
    ),
    "recommendations.impressions_persist": (
        "apps.recommendations.tasks",
        "impressions_persist",
        "default",
    ),
    "recommendations.impressions_persist_dispatch": (
        "apps.recommendations.tasks",
        "impressions_persist_dispatch",
        "default",
    ),
}


def _our_tasks() -> dict[str, object]:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if task.__module__.startswith("apps.")}


def _decorator_names() -> dict[str, str | None]:
    """`function → name=` of every @shared_task / @app.task in apps/ (None: no explicit name)."""
    found: dict[str, str | None] = {}
    for path in APPS.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                target = call.func if call else decorator
                label = ast.unparse(target)
                if label not in ("shared_task", "app.task", "celery_app.task"):
                    continue
                keywords = {kw.arg: kw.value for kw in call.keywords} if call else {}
                name = keywords.get("name")
                key = f"{path.relative_to(APPS.parent).with_suffix('')}".replace("/", ".")
                found[f"{key}.{node.name}"] = name.value if isinstance(name, ast.Constant) else None
    return found


def test_every_task_is_registered_under_its_wire_name():
    registered = {name: (task.__module__, task.run.__name__) for name, task in _our_tasks().items()}

    assert registered == {name: (module, fn) for name, (module, fn, _) in WIRE_NAMES.items()}


def test_every_task_decorator_spells_its_wire_name_out():
    expected = {f"{module}.{fn}": name for name, (module, fn, _) in WIRE_NAMES.items()}

    assert _decorator_names() == expected


def test_every_task_is_routed_by_its_exact_name():
    prefix = settings.CELERY_TASK_DEFAULT_QUEUE.removesuffix("default")
    expected = {name: {"queue": f"{prefix}{queue}"} for name, (*_, queue) in WIRE_NAMES.items()}

    routes = settings.CELERY_TASK_ROUTES
    assert routes == expected
    for name, (*_, queue) in WIRE_NAMES.items():
        assert app.amqp.router.route({}, name)["queue"].name == f"{prefix}{queue}"


def test_every_beat_entry_names_a_registered_task():
    tasks = _our_tasks()

    assert {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} <= set(tasks)


@pytest.mark.django_db
def test_every_stored_beat_row_names_a_registered_task(alpha, beta):
    tasks = _our_tasks()
    stored = set()
    for store in (alpha, beta):
        with tenant_context(store):
            stored |= set(PeriodicTask.objects.values_list("task", flat=True))

    assert stored == {"apps.recommendations.tasks.train_nightly"}
    assert stored <= set(tasks)
