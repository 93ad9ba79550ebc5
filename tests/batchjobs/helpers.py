"""What the batch job tests share: running a job through the API and reading its file."""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson

BATCH = "/api/v1/recommendations/batch"


def run_job(client, body, capture) -> dict:
    """POST the job; its tasks run as the request's transaction commits (with eager Celery).
    Returns the job's status as GET answers it afterwards."""
    with capture(execute=True):
        response = client.post(BATCH, body, content_type="application/json")
    assert response.status_code == 202, response.content
    return client.get(f"{BATCH}/{response.json()['id']}").json()


def download(client, job: dict):
    url = urlsplit(job["download"]["url"])
    return client.get(f"{url.path}?{url.query}")


def file_lines(response) -> list[dict]:
    return [orjson.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def api_items(client, user_id: str, k: int, query: str = "") -> list[dict]:
    """The items `GET /users/{user_id}?k=K` serves now."""
    response = client.get(f"/api/v1/recommendations/users/{user_id}?k={k}{query}")
    assert response.status_code == 200
    return response.json()["items"]
