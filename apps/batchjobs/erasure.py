"""What batch jobs erase of a shopper (registered in apps.core.erasure by BatchJobsConfig.ready):
their failure rows, and their line in every result file the store still has."""

from __future__ import annotations

import orjson
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from apps.batchjobs.models import BatchJob, BatchJobFailure


def shopper_batch_failures_erase(user_id: str) -> int:
    deleted, _ = BatchJobFailure.objects.filter(user_id=user_id).delete()
    return deleted


def shopper_batch_results_erase(user_id: str) -> int:
    """Rewrite each committed result file that lists the shopper without their line; returns
    how many lines went. Result lines start with the shopper's id (`{"user_id":...`)."""
    prefix = orjson.dumps({"user_id": user_id})[:-1] + b","
    removed = 0
    names = (
        BatchJob.objects.filter(status=BatchJob.Status.SUCCEEDED)
        .exclude(result_name="")
        .values_list("result_name", flat=True)
    )
    for name in names:
        if not default_storage.exists(name):
            continue
        with default_storage.open(name, "rb") as handle:
            lines = handle.readlines()
        kept = [line for line in lines if not line.startswith(prefix)]
        if len(kept) == len(lines):
            continue
        removed += len(lines) - len(kept)
        default_storage.delete(name)
        default_storage.save(name, ContentFile(b"".join(kept)))
    return removed
