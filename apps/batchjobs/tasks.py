"""Celery tasks of batch recommendation jobs: thin, on their own `batch` queue (routed by exact
name in config/settings/celery_tasks.py), so a long export never waits in front of a training
or an email. They run in the schema of the store that sent them (tenant-schemas-celery) and
take the job id; each step sends the next (apps.batchjobs.services)."""

from __future__ import annotations

from celery import shared_task

from apps.batchjobs import services


@shared_task(name="apps.batchjobs.tasks.batch_job_start")
def batch_job_start(job_id: str) -> dict:
    job = services.batch_job_start(job_id=job_id)
    return {"status": job.status if job else "missing", "total": job.total if job else 0}


@shared_task(name="apps.batchjobs.tasks.batch_job_chunk")
def batch_job_chunk(job_id: str, index: int) -> dict:
    job = services.batch_job_chunk(job_id=job_id, index=index)
    return {"status": job.status, "done": job.done}


@shared_task(name="apps.batchjobs.tasks.batch_job_finish")
def batch_job_finish(job_id: str) -> dict:
    job = services.batch_job_finish(job_id=job_id)
    return {"status": job.status, "bytes": job.result_bytes}
