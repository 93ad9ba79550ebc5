"""A job's life: cancel, failure, live progress, redelivered steps, the dashboard page and the
export command. A cancelled or failed job never presents a half-written file as complete."""

from __future__ import annotations

import asyncio
import os

import orjson
import pytest
from asgiref.sync import async_to_sync
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.batchjobs import services, storage
from apps.batchjobs.models import BatchJob
from apps.core.live import store_group
from tests.batchjobs.helpers import BATCH, api_items, download, file_lines, run_job

pytestmark = pytest.mark.django_db


def test_cancel_leaves_status_cancelled_and_no_file(
    stores, key_client, small_chunks, django_capture_on_commit_callbacks
):
    # given a running job whose first chunk is written (tasks run by hand, not dispatched)
    client = key_client(stores.a)
    with django_capture_on_commit_callbacks(execute=False):
        created = client.post(
            BATCH, {"user_ids": ["1", "2", "3", "4", "5"]}, content_type="application/json"
        ).json()
    schema = stores.a.schema_name
    with tenant_context(stores.a):
        services.batch_job_start(job_id=created["id"], dispatch=False)
        services.batch_job_chunk(job_id=created["id"], index=0, dispatch=False)
        assert default_storage.exists(storage.part_name(schema, created["id"], 0))

    # when it is cancelled, and the queued steps then run
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = client.post(f"{BATCH}/{created['id']}/cancel")
    with tenant_context(stores.a), django_capture_on_commit_callbacks(execute=True):
        services.batch_job_chunk(job_id=created["id"], index=1, dispatch=False)
        services.batch_job_finish(job_id=created["id"])

    # then cancelled (progress as it stood), no result and no work files; a second cancel 409
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    job = client.get(f"{BATCH}/{created['id']}").json()
    assert (job["status"], job["progress"], job["download"]) == (
        "cancelled",
        {"done": 2, "total": 5},
        None,
    )
    assert not default_storage.exists(storage.result_name(schema, created["id"]))
    assert not default_storage.exists(storage.part_name(schema, created["id"], 0))
    assert not default_storage.exists(storage.part_name(schema, created["id"], 1))
    assert not default_storage.exists(storage.shoppers_name(schema, created["id"]))
    again = client.post(f"{BATCH}/{created['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "job_finished"
    with tenant_context(stores.a):
        actions = list(
            AuditEvent.objects.filter(target_id=created["id"])
            .order_by("id")
            .values_list("action", flat=True)
        )
    assert actions == ["batch_job.created", "batch_job.cancelled"]


def test_a_job_whose_result_cannot_be_stored_fails_without_a_file(
    stores, key_client, django_capture_on_commit_callbacks
):
    # given a job whose result name is taken by a folder (the storage refuses the rename)
    client = key_client(stores.a)
    with django_capture_on_commit_callbacks(execute=False):
        created = client.post(BATCH, {"user_ids": ["1"]}, content_type="application/json").json()
    schema = stores.a.schema_name
    blocker = default_storage.path(storage.result_name(schema, created["id"]))
    os.makedirs(blocker)
    try:
        # when it runs to the end
        with tenant_context(stores.a), django_capture_on_commit_callbacks(execute=True):
            services.batch_job_run_inline(job_id=created["id"])

        # then failed with the reason (no server path in it), no link, no work files left
        job = client.get(f"{BATCH}/{created['id']}").json()
        assert job["status"] == "failed"
        assert job["error"] == "IsADirectoryError: Is a directory"
        assert job["download"] is None
        assert not default_storage.exists(storage.part_name(schema, created["id"], 0))
        assert not os.path.exists(blocker + storage.PARTIAL_SUFFIX)
    finally:
        if os.path.isdir(blocker):
            os.rmdir(blocker)


def test_progress_is_pushed_live_to_the_store_dashboards_only(
    stores, key_client, small_chunks, eager_celery, django_capture_on_commit_callbacks
):
    # given listeners on store A's and store B's dashboard groups
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    channel_a = async_to_sync(layer.new_channel)()
    channel_b = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(store_group(stores.a.schema_name), channel_a)
    async_to_sync(layer.group_add)(store_group(stores.b.schema_name), channel_b)

    async def drain(channel: str) -> list[dict]:
        got = []
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=0.5)
            except TimeoutError:
                return got
            if message["payload"].get("type") == "batch.progress":
                got.append(message["payload"])

    # when a job of five shoppers runs in chunks of two
    client = key_client(stores.a)
    body = {"user_ids": ["1", "2", "3", "4", "5"]}
    job = run_job(client, body, django_capture_on_commit_callbacks)

    # then store A's dashboards saw every step, store B's nothing
    steps = [
        (m["job"], m["status"], m["done"], m["total"], m["failures"])
        for m in async_to_sync(drain)(channel_a)
    ]
    assert steps == [
        (job["id"], "queued", 0, 5, 0),
        (job["id"], "running", 0, 5, 0),
        (job["id"], "running", 2, 5, 0),
        (job["id"], "running", 4, 5, 0),
        (job["id"], "running", 5, 5, 0),
        (job["id"], "succeeded", 5, 5, 0),
    ]
    assert async_to_sync(drain)(channel_b) == []
    assert job["status"] == "succeeded"


def test_redelivered_steps_neither_repeat_work_nor_fork_the_chain(
    stores, key_client, small_chunks, django_capture_on_commit_callbacks
):
    # given a job whose first chunk (one unknown shopper) ran, then is delivered again, and a
    # chunk whose row update never committed (its part and failures exist, progress not)
    client = key_client(stores.a)
    with django_capture_on_commit_callbacks(execute=False):
        created = client.post(
            BATCH, {"user_ids": ["1", "ghost", "3"]}, content_type="application/json"
        ).json()
    with tenant_context(stores.a), django_capture_on_commit_callbacks(execute=False) as sent:
        services.batch_job_start(job_id=created["id"])
        services.batch_job_chunk(job_id=created["id"], index=0)
        sent_before_redelivery = len(sent)
        again = services.batch_job_chunk(job_id=created["id"], index=0)
        sent_after_redelivery = len(sent)
        services.batch_job_chunk(job_id=created["id"], index=1, dispatch=False)
        BatchJob.objects.filter(pk=created["id"]).update(done=2)
        services.batch_job_chunk(job_id=created["id"], index=1, dispatch=False)
        services.batch_job_finish(job_id=created["id"])

    # then the redelivered chunk sent nothing more, one failure row, each shopper once
    assert (again.done, sent_after_redelivery) == (2, sent_before_redelivery)
    job = client.get(f"{BATCH}/{created['id']}").json()
    assert (job["status"], job["failures_count"], job["progress"]["done"]) == ("succeeded", 1, 3)
    assert [line["user_id"] for line in file_lines(download(client, job))] == ["1", "3"]


def test_the_dashboard_lists_jobs_with_progress_and_cancels_them(
    stores, member_client, key_client, django_capture_on_commit_callbacks
):
    # given a queued job of store A
    with django_capture_on_commit_callbacks(execute=False):
        created = (
            key_client(stores.a)
            .post(BATCH, {"user_ids": ["1", "2"]}, content_type="application/json")
            .json()
        )
    owner, _ = member_client(stores.a, role="owner")
    analyst, _ = member_client(stores.a, role="analyst")

    # when members open the page, an analyst tries to cancel, the owner cancels
    page = owner.get("/batch-jobs/")
    refused = analyst.post(f"/batch-jobs/{created['id']}/cancel/")
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = owner.post(f"/batch-jobs/{created['id']}/cancel/")

    # then the page shows the job's progress with a cancel button; only the owner could cancel
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-batch-job="{created["id"]}"' in html
    assert 'value="0" data-batch-progress' in html
    assert 'data-testid="batch-cancel"' in html
    assert refused.status_code == 403
    assert cancelled.status_code == 302
    with tenant_context(stores.a):
        assert BatchJob.objects.get(pk=created["id"]).status == "cancelled"
    assert 'data-testid="batch-cancel"' not in owner.get("/batch-jobs/").content.decode()


def test_the_export_command_writes_the_same_file(stores, tmp_path, key_client):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("7\n\n3\nnobody\n")
    output = tmp_path / "out.jsonl"

    call_command(
        "export_recommendations",
        "--tenant",
        stores.a.slug,
        "--user-ids-file",
        str(ids_file),
        "--k",
        "4",
        "--output",
        str(output),
    )

    client = key_client(stores.a)
    assert output.read_bytes() == b"".join(
        orjson.dumps({"user_id": u, "items": api_items(client, u, 4)}) + b"\n" for u in ["7", "3"]
    )
    with tenant_context(stores.a):
        job = BatchJob.objects.get()
    assert (job.status, job.failures_count, job.created_by_label) == (
        "succeeded",
        1,
        "export_recommendations",
    )


def test_the_export_command_refuses_an_unknown_store_and_segment(stores, tmp_path):
    output = str(tmp_path / "x")

    with pytest.raises(CommandError, match="No store with slug 'nope'"):
        call_command(
            "export_recommendations", "--tenant", "nope", "--segment", "0", "--output", output
        )
    with pytest.raises(CommandError, match="segment"):
        call_command(
            "export_recommendations",
            "--tenant",
            stores.a.slug,
            "--segment",
            "999",
            "--output",
            output,
        )

    assert not (tmp_path / "x").exists()
