"""Who may see and fetch a job: expiring signed links valid only on the store that signed them,
other stores' keys, scopes, bad input (400 naming the field, nothing created) and the per-store
limit of running jobs."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django_tenants.utils import tenant_context

from apps.batchjobs.models import BatchJob
from tests.batchjobs.helpers import BATCH, download, run_job

pytestmark = pytest.mark.django_db


def test_an_expired_or_altered_link_is_refused(
    stores, key_client, settings, eager_celery, django_capture_on_commit_callbacks
):
    # given a finished job whose links are signed already expired
    client = key_client(stores.a)
    settings.BATCH_DOWNLOAD_LINK_SECONDS = -1
    job = run_job(client, {"user_ids": ["1"]}, django_capture_on_commit_callbacks)

    # when the link is used as given, altered, or without its token
    expired = download(client, job)
    url = urlsplit(job["download"]["url"])
    altered = client.get(f"{url.path}?{url.query[:-2]}xx")
    missing = client.get(url.path)

    # then 410 for the expired one, 403 for the others
    assert (expired.status_code, expired.json()["error"]["code"]) == (410, "link_expired")
    assert (altered.status_code, altered.json()["error"]["code"]) == (403, "invalid_link")
    assert (missing.status_code, missing.json()["error"]["code"]) == (403, "invalid_link")


def test_another_store_cannot_read_cancel_or_download_a_job(
    stores, key_client, store_client, eager_celery, django_capture_on_commit_callbacks
):
    # given a finished job of store A and its link
    client_a = key_client(stores.a)
    job = run_job(client_a, {"user_ids": ["1"]}, django_capture_on_commit_callbacks)
    url = urlsplit(job["download"]["url"])

    # when store B's key and store B's host are used
    client_b = key_client(stores.b)
    reads = [
        client_b.get(f"{BATCH}/{job['id']}"),
        client_b.get(f"{BATCH}/{job['id']}/failures"),
        client_b.post(f"{BATCH}/{job['id']}/cancel"),
    ]
    link_on_b = store_client(stores.b).get(f"{url.path}?{url.query}")
    listed_on_b = client_b.get(BATCH).json()["results"]
    key_a_on_b = store_client(
        stores.b, HTTP_AUTHORIZATION=client_a.defaults["HTTP_AUTHORIZATION"]
    ).get(f"{BATCH}/{job['id']}")

    # then nothing of store A's job is visible there; on store A the link works
    assert [r.status_code for r in reads] == [404, 404, 404]
    assert (link_on_b.status_code, link_on_b.json()["error"]["code"]) == (403, "invalid_link")
    assert job["id"] not in [row["id"] for row in listed_on_b]
    assert key_a_on_b.status_code == 401
    assert download(client_a, job).status_code == 200
    with tenant_context(stores.a):
        assert BatchJob.objects.get(pk=job["id"]).status == "succeeded"


def test_a_key_without_the_recommend_scope_is_refused(stores, key_client):
    client = key_client(stores.a, scopes=("ingest",))

    response = client.post(BATCH, {"user_ids": ["1"]}, content_type="application/json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_scope"
    with tenant_context(stores.a):
        assert not BatchJob.objects.exists()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"user_ids", "segment", "active_within_days"}),
        ({"user_ids": ["1"], "segment": 0}, {"user_ids", "segment"}),
        ({"user_ids": []}, {"user_ids"}),
        ({"user_ids": ["1", 5]}, {"user_ids"}),
        ({"user_ids": "1"}, {"user_ids"}),
        ({"user_ids": ["1"], "k": 0}, {"k"}),
        ({"user_ids": ["1"], "k": 101}, {"k"}),
        ({"segment": -1}, {"segment"}),
        ({"segment": 99}, {"segment"}),
        ({"active_within_days": 0}, {"active_within_days"}),
        ({"userIds": ["1"]}, {"userIds"}),
        ({"user_ids": ["1"], "placement": "nowhere"}, {"placement"}),
    ],
)
def test_bad_input_is_400_naming_the_field_and_creates_nothing(stores, key_client, body, fields):
    client = key_client(stores.a)

    response = client.post(BATCH, body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert set(response.json()["error"]["fields"]) >= fields
    with tenant_context(stores.a):
        assert not BatchJob.objects.exists()


def test_a_shopper_id_breaking_the_id_rule_is_named_by_position(stores, key_client):
    client = key_client(stores.a)

    response = client.post(BATCH, {"user_ids": ["1", "bad\nid"]}, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "user_ids": [
            "Item 1: Must contain printable characters only (no control characters or line breaks)."
        ]
    }


def test_a_store_runs_at_most_the_allowed_jobs_at_once(
    stores, key_client, settings, django_capture_on_commit_callbacks
):
    settings.BATCH_MAX_ACTIVE_JOBS = 1
    client = key_client(stores.a)
    with django_capture_on_commit_callbacks(execute=False):
        first = client.post(BATCH, {"user_ids": ["1"]}, content_type="application/json")
        second = client.post(BATCH, {"user_ids": ["2"]}, content_type="application/json")

    assert first.status_code == 202
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "too_many_jobs"
    with tenant_context(stores.a):
        assert BatchJob.objects.count() == 1
