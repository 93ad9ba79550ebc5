"""dispatch_on_commit sends a store's task after commit, in the schema it was called in."""

import pytest
from django.db import connection
from django_tenants.utils import schema_context, tenant_context
from tenant_schemas_celery.task import headers_with_schema

from apps.core.dispatch import dispatch_on_commit

pytestmark = pytest.mark.django_db


class _RecordingTask:
    """Stands in for a Celery task: records the schema tenant-schemas-celery would stamp."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple, dict]] = []

    def apply_async(self, args=None, kwargs=None) -> None:
        self.sent.append((headers_with_schema({})["_schema_name"], args, kwargs))


def test_the_task_carries_the_schema_it_was_dispatched_in_although_commit_runs_elsewhere(
    alpha, beta, django_capture_on_commit_callbacks
):
    task = _RecordingTask()
    # given a public-schema transaction that dispatches from inside two stores' contexts
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with tenant_context(alpha):
            dispatch_on_commit(task, 7, manual=True)
        with tenant_context(beta):
            dispatch_on_commit(task, 8)
        # then nothing is sent before commit
        assert task.sent == []
        assert connection.schema_name == "public"

    # when the callbacks run (in the public schema), each task carries its own store's schema
    assert len(callbacks) == 2
    assert task.sent == [("store_alpha", (7,), {"manual": True}), ("store_beta", (8,), {})]
    assert connection.schema_name == "public"


def test_callbacks_run_in_another_store_still_send_the_callers_schema(
    alpha, beta, django_capture_on_commit_callbacks
):
    task = _RecordingTask()
    with tenant_context(alpha), django_capture_on_commit_callbacks() as callbacks:
        dispatch_on_commit(task, 1)
    with schema_context(beta.schema_name):
        for callback in callbacks:
            callback()
        assert connection.schema_name == "store_beta"

    assert task.sent == [("store_alpha", (1,), {})]
