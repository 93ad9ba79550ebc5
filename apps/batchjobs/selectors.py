"""Reads of batch jobs (the current store's)."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from apps.batchjobs.models import BatchJob, BatchJobFailure
from apps.core.errors import ApplicationError


def batch_job_get(*, job_id: uuid.UUID | str) -> BatchJob:
    """The store's job; ApplicationError 404 `not_found` otherwise (also for another store's
    job: its row lives in another schema)."""
    job = BatchJob.objects.filter(pk=job_id).first()
    if job is None:
        raise ApplicationError("No such batch job.", code="not_found", status_code=404)
    return job


def batch_job_list(*, limit: int = 50) -> list[BatchJob]:
    return list(BatchJob.objects.order_by("-created_at")[:limit])


def batch_job_failures(*, job: BatchJob) -> QuerySet[BatchJobFailure]:
    return BatchJobFailure.objects.filter(job=job).order_by("chunk", "id")
