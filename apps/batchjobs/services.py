"""Batch recommendation jobs: accepting one, running it in chunks, committing the result, and
cancelling.

Life of a job: `batch_job_create` (queued; audited; `batch_job_start` sent to the `batch` queue
on commit) → `batch_job_start` fixes the shopper list in storage (running) → one
`batch_job_chunk` per BATCH_CHUNK_SIZE shoppers, each sending the next, each writing its part
file and its failures and pushing progress → `batch_job_finish` joins the parts into the
result and marks the job succeeded in the same locked step. A cancelled job's next step sees
the status and deletes the work files; a step that raises marks the job failed. Every status
change takes the job row's lock (select_for_update), so cancel and finish never both win, and
every step is idempotent (a redelivered step that had committed does nothing; one that had not
runs again, rewriting its part and its failure rows).
"""

from __future__ import annotations

import logging
import uuid
import zlib
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.batchjobs import placements, selection, storage
from apps.batchjobs.lists import ListMaker
from apps.batchjobs.models import BatchJob, BatchJobFailure
from apps.core.dispatch import dispatch_on_commit
from apps.core.errors import ApplicationError
from apps.core.live import store_push_on_commit
from apps.recommendations.services.common import store_schema

logger = logging.getLogger(__name__)

_CREATE_LOCK_CLASS = 0x42A7C4  # advisory lock class: job creations of one store, one at a time


def _progress(job: BatchJob) -> dict[str, Any]:
    return {
        "type": "batch.progress",
        "job": str(job.pk),
        "status": job.status,
        "done": job.done,
        "total": job.total,
        "failures": job.failures_count,
    }


def _chunks(job: BatchJob) -> int:
    return -(-job.total // job.chunk_size) if job.total else 0


def batch_job_create(
    *,
    user_ids: list[str] | None = None,
    segment: int | None = None,
    active_within_days: int | None = None,
    placement: str = "",
    k: int = 10,
    acting_user=None,
    actor_api_key=None,
    actor_label: str = "",
    request: HttpRequest | None = None,
    dispatch: bool = True,
) -> BatchJob:
    """Accept a job for exactly one selection (listed shopper ids, a segment of the active
    model, or shoppers active in the last N days); queued, audited as `batch_job.created`,
    started on the `batch` queue after commit (with `dispatch`).

    Raises ApplicationError 400 naming the field for a missing or unknown segment or
    placement, 409 `too_many_jobs` when the store already has BATCH_MAX_ACTIVE_JOBS queued or
    running."""
    schema = store_schema()
    given = [
        name
        for name, value in (
            ("user_ids", user_ids),
            ("segment", segment),
            ("active_within_days", active_within_days),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise ApplicationError(
            "Give exactly one of user_ids, segment and active_within_days.",
            fields={"non_field_errors": ["Exactly one of user_ids, segment, active_within_days."]},
        )
    if segment is not None:
        selection.segment_check(segment)
    if placement:
        placements.placement_resolve(placement)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)",
                [_CREATE_LOCK_CLASS, zlib.crc32(schema.encode()) & 0x7FFFFFFF],
            )
        active = BatchJob.objects.filter(
            status__in=[BatchJob.Status.QUEUED, BatchJob.Status.RUNNING]
        ).count()
        if active >= settings.BATCH_MAX_ACTIVE_JOBS:
            raise ApplicationError(
                f"This store already has {active} batch jobs queued or running; wait for one "
                "to finish or cancel one.",
                code="too_many_jobs",
                status_code=409,
            )
        kind = given[0]
        job = BatchJob.objects.create(
            selection=kind,
            selection_value=segment if segment is not None else active_within_days,
            placement=placement,
            k=k,
            chunk_size=settings.BATCH_CHUNK_SIZE,
            total=len(user_ids) if user_ids is not None else 0,
            created_by_label=(
                actor_label
                or (getattr(acting_user, "email", "") if acting_user is not None else "")
                or (f"api_key:{actor_api_key.prefix}" if actor_api_key is not None else "")
                or "system"
            )[:255],
        )
        if user_ids is not None:
            storage.shoppers_write(schema, job.pk, user_ids)
        audit_record(
            action=AuditAction.BATCH_JOB_CREATED,
            acting_user=acting_user,
            actor_api_key=actor_api_key,
            actor_label=actor_label,
            target_type="batch_job",
            target_id=str(job.pk),
            details={
                "selection": kind,
                "value": job.selection_value if user_ids is None else len(user_ids),
                "placement": placement,
                "k": k,
            },
            request=request,
        )
        store_push_on_commit(_progress(job), schema_name=schema)
        if dispatch:
            from apps.batchjobs.tasks import batch_job_start

            dispatch_on_commit(batch_job_start, str(job.pk))
    return job


def _locked(job_id: uuid.UUID | str) -> BatchJob | None:
    return BatchJob.objects.select_for_update().filter(pk=job_id).first()


def batch_job_start(*, job_id: uuid.UUID | str, dispatch: bool = True) -> BatchJob | None:
    """Fix the job's shopper list (resolving a segment or the active shoppers now) and mark
    it running; sends the first chunk (or the finish, for no shoppers). A job that is no
    longer queued is left as it is."""
    schema = store_schema()
    job = BatchJob.objects.filter(pk=job_id).first()
    if job is None or job.status != BatchJob.Status.QUEUED:
        return job
    try:
        if job.selection == BatchJob.Selection.USER_IDS:
            user_ids = storage.shoppers_read(schema, job.pk)
        elif job.selection == BatchJob.Selection.SEGMENT:
            user_ids = selection.segment_shoppers(job.selection_value)
            storage.shoppers_write(schema, job.pk, user_ids)
        else:
            user_ids = selection.active_shoppers(job.selection_value)
            storage.shoppers_write(schema, job.pk, user_ids)
        version = ListMaker(k=job.k, placement=job.placement).model_version_number()
    except Exception as exc:
        return _fail(job_id=job.pk, error=_describe(exc))
    with transaction.atomic():
        job = _locked(job_id)
        if job.status != BatchJob.Status.QUEUED:
            transaction.on_commit(lambda: _cleanup(schema, job))
            return job
        job.status = BatchJob.Status.RUNNING
        job.total = len(user_ids)
        job.started_at = timezone.now()
        job.model_version_number = version
        job.save(update_fields=["status", "total", "started_at", "model_version_number"])
        store_push_on_commit(_progress(job), schema_name=schema)
        if dispatch:
            _send_next(job, 0)
    return job


def _send_next(job: BatchJob, index: int) -> None:
    from apps.batchjobs.tasks import batch_job_chunk, batch_job_finish

    if index < _chunks(job):
        dispatch_on_commit(batch_job_chunk, str(job.pk), index)
    else:
        dispatch_on_commit(batch_job_finish, str(job.pk))


def batch_job_chunk(*, job_id: uuid.UUID | str, index: int, dispatch: bool = True) -> BatchJob:
    """List chunk `index` of a running job into its part file, record its failures and
    progress, and send the next step. Any error fails the job (its files are deleted). A
    chunk already recorded is left alone; one that ran without committing runs again,
    rewriting its part and its failure rows."""
    schema = store_schema()
    job = BatchJob.objects.get(pk=job_id)
    if job.status != BatchJob.Status.RUNNING:
        _cleanup(schema, job)
        return job
    if job.done >= min(job.total, (index + 1) * job.chunk_size):
        # Redelivered after its commit (the worker died before the ack): its part, failures
        # and the next step were all committed then; sending that step again would fork the
        # chain.
        return job
    try:
        user_ids = storage.shoppers_read(schema, job.pk)
        chunk = user_ids[index * job.chunk_size : (index + 1) * job.chunk_size]
        lists = ListMaker(k=job.k, placement=job.placement).lists(chunk)
        storage.part_write(schema, job.pk, index, lists.lines)
    except Exception as exc:
        return _fail(job_id=job.pk, error=_describe(exc))
    with transaction.atomic():
        job = _locked(job_id)
        if job.status != BatchJob.Status.RUNNING:
            transaction.on_commit(lambda: _cleanup(schema, job))
            return job
        BatchJobFailure.objects.filter(job=job, chunk=index).delete()
        BatchJobFailure.objects.bulk_create(
            BatchJobFailure(job=job, chunk=index, user_id=user_id, reason=reason[:255])
            for user_id, reason in lists.failures
        )
        job.done = min(job.total, (index + 1) * job.chunk_size)
        job.failures_count = BatchJobFailure.objects.filter(job=job).count()
        job.save(update_fields=["done", "failures_count"])
        store_push_on_commit(_progress(job), schema_name=schema)
        if dispatch:
            _send_next(job, index + 1)
    return job


def batch_job_finish(*, job_id: uuid.UUID | str) -> BatchJob:
    """Commit the result file and mark the job succeeded, under the job's lock (a cancel
    waits, then finds it finished). A job no longer running only has its files deleted."""
    schema = store_schema()
    try:
        with transaction.atomic():
            job = _locked(job_id)
            if job.status != BatchJob.Status.RUNNING:
                transaction.on_commit(lambda: _cleanup(schema, job))
                return job
            name, size = storage.result_commit(schema, job.pk, _chunks(job))
            # Should the row's update fail, the committed file is not left unnamed behind it.
            transaction.on_commit(lambda: _cleanup(schema, job))
            job.status = BatchJob.Status.SUCCEEDED
            job.result_name = name
            job.result_bytes = size
            job.done = job.total
            job.finished_at = timezone.now()
            job.save(update_fields=["status", "result_name", "result_bytes", "done", "finished_at"])
            store_push_on_commit(_progress(job), schema_name=schema)
    except Exception as exc:
        storage.result_delete(storage.result_name(schema, job_id))
        return _fail(job_id=job_id, error=_describe(exc))
    return job


def batch_job_cancel(
    *, job: BatchJob, acting_user=None, actor_api_key=None, request: HttpRequest | None = None
) -> BatchJob:
    """Cancel a queued or running job: its work files are deleted and it never gets a result.
    Audited as `batch_job.cancelled`. Raises ApplicationError 409 `job_finished` for a job that
    already succeeded, failed or was cancelled."""
    schema = store_schema()
    with transaction.atomic():
        job = _locked(job.pk)
        if job.finished:
            raise ApplicationError(
                f"This job has already {job.status}.", code="job_finished", status_code=409
            )
        job.status = BatchJob.Status.CANCELLED
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "finished_at"])
        audit_record(
            action=AuditAction.BATCH_JOB_CANCELLED,
            acting_user=acting_user,
            actor_api_key=actor_api_key,
            target_type="batch_job",
            target_id=str(job.pk),
            details={"done": job.done, "total": job.total},
            request=request,
        )
        store_push_on_commit(_progress(job), schema_name=schema)
        transaction.on_commit(lambda: _cleanup(schema, job))
    return job


def batch_job_run_inline(*, job_id: uuid.UUID | str) -> BatchJob:
    """Run a queued job to its end in this process, without Celery (the export command)."""
    job = batch_job_start(job_id=job_id, dispatch=False)
    index = 0
    while job is not None and job.status == BatchJob.Status.RUNNING and index < _chunks(job):
        job = batch_job_chunk(job_id=job_id, index=index, dispatch=False)
        index += 1
    if job is not None and job.status == BatchJob.Status.RUNNING:
        job = batch_job_finish(job_id=job_id)
    return BatchJob.objects.get(pk=job_id)


# --- failure and clean-up -----------------------------------------------------------------------
def _describe(exc: Exception) -> str:
    if isinstance(exc, ApplicationError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        # Not the message: it names the server's paths.
        return f"{type(exc).__name__}: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}"[:2000]


def _fail(*, job_id: uuid.UUID | str, error: str) -> BatchJob:
    logger.warning("batch job %s failed: %s", job_id, error)
    schema = store_schema()
    with transaction.atomic():
        job = _locked(job_id)
        if not job.finished:
            job.status = BatchJob.Status.FAILED
            job.error = error
            job.finished_at = timezone.now()
            job.save(update_fields=["status", "error", "finished_at"])
            store_push_on_commit({**_progress(job), "error": error[:500]}, schema_name=schema)
        transaction.on_commit(lambda: _cleanup(schema, job))
    return job


def _cleanup(schema: str, job: BatchJob) -> None:
    try:
        storage.work_files_delete(schema, job.pk, _chunks(job))
    except OSError:
        logger.warning("batch job %s: work files not deleted", job.pk, exc_info=True)
