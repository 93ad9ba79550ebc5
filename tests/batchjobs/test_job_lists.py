"""What a batch job writes: each shopper's line exactly as the API serves it (with or without a
placement), for listed shoppers, a segment of the active model or recently active shoppers;
what erasure removes from stored results."""

from __future__ import annotations

import os
from datetime import timedelta

import orjson
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.batchjobs import storage
from apps.batchjobs.models import BatchJob, BatchJobFailure
from apps.catalog.models import Shopper
from tests.batchjobs.helpers import BATCH, api_items, download, file_lines, run_job

pytestmark = pytest.mark.django_db


def test_the_file_holds_each_shopper_exactly_as_the_api_serves_them(
    stores, key_client, small_chunks, eager_celery, django_capture_on_commit_callbacks
):
    # given store A's trained model, and shoppers of which one does not exist
    client = key_client(stores.a)
    user_ids = ["7", "3", "nobody", "12", "7", "45"]

    # when a batch job lists them with k = 5, in chunks of two
    job = run_job(client, {"user_ids": user_ids, "k": 5}, django_capture_on_commit_callbacks)

    # then the job succeeded, the unknown shopper is reported, the others are in the file in
    # the order given (the repeated id once), with the API's lists to the byte
    assert job["status"] == "succeeded"
    assert job["progress"] == {"done": 5, "total": 5}
    assert job["failures_count"] == 1
    assert job["selection"] == {"user_ids": 5}
    assert job["model_version"] == stores.version_a.label
    response = download(client, job)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    body = b"".join(response.streaming_content)
    expected = b"".join(
        orjson.dumps({"user_id": u, "items": api_items(client, u, 5)}) + b"\n"
        for u in ["7", "3", "12", "45"]
    )
    assert body == expected
    assert job["download"]["bytes"] == len(expected)
    failures = client.get(f"{BATCH}/{job['id']}/failures").json()
    assert failures == {"count": 1, "results": [{"user_id": "nobody", "reason": "unknown_shopper"}]}


def test_only_the_committed_file_remains_and_its_name_leads_with_the_store(
    stores, key_client, eager_celery, django_capture_on_commit_callbacks
):
    client = key_client(stores.a)

    job = run_job(client, {"user_ids": ["1", "2"]}, django_capture_on_commit_callbacks)

    with tenant_context(stores.a):
        row = BatchJob.objects.get(pk=job["id"])
    assert row.result_name == f"batchjobs/{stores.a.schema_name}/{row.pk}.jsonl"
    folder = f"batchjobs/{stores.a.schema_name}"
    assert default_storage.exists(row.result_name)
    assert not default_storage.exists(f"{folder}/{row.pk}/shoppers.json")
    assert not default_storage.exists(f"{folder}/{row.pk}/parts/000000.jsonl")
    assert not os.path.exists(default_storage.path(row.result_name) + storage.PARTIAL_SUFFIX)


def test_a_segment_job_lists_exactly_the_segment_of_the_active_model(
    stores, key_client, eager_celery, django_capture_on_commit_callbacks
):
    # given the active model's segment 1 (computed from the model, shopper by shopper)
    from apps.recommendations.model_store import artifact_dir
    from ml.model import RecommenderModel

    model = RecommenderModel.load(artifact_dir(stores.version_a.artifact_path))
    members = [u for u in model.user_index.ids.tolist() if model.segment_of(u) == 1]
    assert members
    client = key_client(stores.a)

    # when a job asks for segment 1 with k = 3
    job = run_job(client, {"segment": 1, "k": 3}, django_capture_on_commit_callbacks)

    # then one line per member, each with 3 items of store A
    assert job["status"] == "succeeded"
    assert job["progress"] == {"done": len(members), "total": len(members)}
    lines = file_lines(download(client, job))
    assert [line["user_id"] for line in lines] == members
    assert {len(line["items"]) for line in lines} == {3}
    assert all(item["item_id"].startswith("a") for line in lines for item in line["items"])


def test_an_active_within_days_job_lists_shoppers_seen_in_that_window(
    stores, key_client, eager_celery, django_capture_on_commit_callbacks
):
    # given a window of N days that holds about half of store A's shoppers
    with tenant_context(stores.a):
        seen = sorted(Shopper.objects.values_list("last_seen_at", flat=True))
        days = (timezone.now() - seen[len(seen) // 2]).days
        since = timezone.now() - timedelta(days=days)
        expected = list(
            Shopper.objects.filter(last_seen_at__gte=since)
            .order_by("id")
            .values_list("user_id", flat=True)
        )
    assert 0 < len(expected) < 120
    client = key_client(stores.a)

    # when a job asks for the shoppers active within N days
    job = run_job(client, {"active_within_days": days, "k": 2}, django_capture_on_commit_callbacks)

    # then exactly those, in the store's order
    assert job["status"] == "succeeded"
    assert [line["user_id"] for line in file_lines(download(client, job))] == expected


def test_a_placement_job_lists_what_the_api_serves_with_that_placement(
    stores, key_client, eager_celery, django_capture_on_commit_callbacks
):
    # given a personal placement of store A that pins an item and caps categories
    from apps.merchandising.services import placement_create

    with tenant_context(stores.a), django_capture_on_commit_callbacks(execute=True):
        placement_create(
            name="email",
            scenario="personal",
            rules={
                "pins": [{"item_id": "a50", "position": 2}],
                "diversity": {"max_per_category": 2},
            },
        )
    client = key_client(stores.a)

    # when a job lists shoppers 7 and 3 through it
    job = run_job(
        client,
        {"user_ids": ["7", "3"], "placement": "email", "k": 5},
        django_capture_on_commit_callbacks,
    )

    # then each line is the API's list for that placement
    assert (job["status"], job["placement"]) == ("succeeded", "email")
    lines = file_lines(download(client, job))
    assert [line["user_id"] for line in lines] == ["7", "3"]
    for line in lines:
        assert line["items"] == api_items(client, line["user_id"], 5, "&placement=email")
        assert line["items"][1]["item_id"] == "a50"


def test_a_placement_of_another_scenario_is_refused(
    stores, key_client, django_capture_on_commit_callbacks
):
    from apps.merchandising.services import placement_create

    with tenant_context(stores.a), django_capture_on_commit_callbacks(execute=True):
        placement_create(name="pdp", scenario="similar", rules={})
    client = key_client(stores.a)

    response = client.post(
        BATCH, {"user_ids": ["1"], "placement": "pdp"}, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "placement": ["Placement 'pdp' is for the 'similar' scenario, not 'personal'."]
    }
    with tenant_context(stores.a):
        assert not BatchJob.objects.exists()


def test_erasing_a_shopper_removes_their_lines_and_failure_rows(
    stores, key_client, eager_celery, django_capture_on_commit_callbacks
):
    # given a finished job listing shoppers 1 and 2, with an unknown id reported
    from apps.catalog.services import shopper_erase

    client = key_client(stores.a)
    job = run_job(client, {"user_ids": ["1", "2", "ghost"]}, django_capture_on_commit_callbacks)
    with tenant_context(stores.a):
        BatchJobFailure.objects.create(job_id=job["id"], chunk=9, user_id="2", reason="error: x")

        # when shopper 2 is erased
        counts = shopper_erase(user_id="2")

    # then their line and failure row are gone; shopper 1's line is untouched
    assert (counts["batch_job_results"], counts["batch_job_failures"]) == (1, 1)
    assert [line["user_id"] for line in file_lines(download(client, job))] == ["1"]
    with tenant_context(stores.a):
        assert list(BatchJobFailure.objects.values_list("user_id", flat=True)) == ["ghost"]
