"""The batch jobs page (`/batch-jobs/`): the store's batch recommendation jobs with live progress
(`batch.progress` pushes on the store's socket), a download link for finished ones and cancel
for running ones. Jobs are started through the API or `manage.py export_recommendations`."""

from __future__ import annotations

from django.contrib import messages
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.batchjobs import selectors, services, storage
from apps.batchjobs.models import BatchJob
from apps.core.errors import ApplicationError
from apps.users.permissions import can, store_member_required


def _download_url(job: BatchJob) -> str:
    if job.status != BatchJob.Status.SUCCEEDED or not job.result_name:
        return ""
    token, _ = storage.download_token(connection.schema_name, job.pk)
    return f"{reverse('batch-job-download', kwargs={'job_id': job.pk})}?token={token}"


@store_member_required("view")
def batch_jobs(request: HttpRequest) -> HttpResponse:
    jobs = selectors.batch_job_list()
    return render(
        request,
        "dashboard/batch_jobs.html",
        {
            "rows": [{"job": job, "download_url": _download_url(job)} for job in jobs],
            "can_cancel": can(request.membership.role, "train_models"),
        },
    )


@require_POST
@store_member_required("train_models")
def batch_job_cancel(request: HttpRequest, job_id) -> HttpResponse:
    try:
        job = selectors.batch_job_get(job_id=job_id)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    try:
        services.batch_job_cancel(job=job, acting_user=request.user, request=request)
        messages.success(request, "The batch job was cancelled.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard:batch-jobs")
