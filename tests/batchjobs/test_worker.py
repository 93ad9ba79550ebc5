"""Batch jobs of two stores through a real Celery worker on the run's `batch` queue: each job's
tasks run in the schema of the store that sent them, and each file holds only that store's
lists, under that store's prefix. The jobs are committed (another thread), so the worker sees
them; they are deleted afterwards."""

from __future__ import annotations

import time

import orjson
import pytest
from django.core.files.storage import default_storage
from django_tenants.utils import tenant_context

from apps.batchjobs import services
from apps.batchjobs.models import BatchJob
from tests.transactions import committed
from tests.workers import running_worker

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def batch_worker(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), running_worker() as worker:
        yield worker


def _job(store, job_id) -> BatchJob:
    def read():
        with tenant_context(store):
            return BatchJob.objects.get(pk=job_id)

    return committed(read)


def test_jobs_of_two_stores_run_in_their_own_schemas_and_files(stores, batch_worker):
    # given a job in each store for the same shopper ids (sent when their creation commits)
    def create(store):
        with tenant_context(store):
            return services.batch_job_create(user_ids=["7", "3"], k=3, actor_label="test").pk

    job_ids = {"a": committed(lambda: create(stores.a)), "b": committed(lambda: create(stores.b))}
    try:
        # when the worker has run them
        deadline = time.monotonic() + 90
        jobs = {}
        while time.monotonic() < deadline:
            jobs = {p: _job(getattr(stores, p), job_ids[p]) for p in ("a", "b")}
            if all(job.finished for job in jobs.values()):
                break
            time.sleep(0.2)

        # then both succeeded, each file under its store's prefix with only its items
        for prefix, job in jobs.items():
            store = getattr(stores, prefix)
            assert (job.status, job.done, job.total) == ("succeeded", 2, 2)
            assert job.result_name.startswith(f"batchjobs/{store.schema_name}/")
            with default_storage.open(job.result_name, "rb") as handle:
                lines = [orjson.loads(line) for line in handle]
            assert [line["user_id"] for line in lines] == ["7", "3"]
            items = [item["item_id"] for line in lines for item in line["items"]]
            assert len(items) == 6
            assert all(item.startswith(prefix) for item in items)
    finally:

        def delete():
            for prefix in ("a", "b"):
                with tenant_context(getattr(stores, prefix)):
                    BatchJob.objects.filter(pk=job_ids[prefix]).delete()

        committed(delete)
