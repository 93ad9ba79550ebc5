"""Mounted by config/urls_tenant.py at /api/v1/recommendations/ next to the recommendation
routes, whose `users/<id>`, `items/<id>` and `sessions/<id>` patterns never match `batch`."""

from django.urls import path

from apps.batchjobs import apis

urlpatterns = [
    path("batch", apis.BatchJobListApi.as_view(), name="batch-jobs"),
    path("batch/<uuid:job_id>", apis.BatchJobDetailApi.as_view(), name="batch-job"),
    path("batch/<uuid:job_id>/cancel", apis.BatchJobCancelApi.as_view(), name="batch-job-cancel"),
    path(
        "batch/<uuid:job_id>/failures",
        apis.BatchJobFailuresApi.as_view(),
        name="batch-job-failures",
    ),
    path("batch/<uuid:job_id>/download", apis.batch_job_download, name="batch-job-download"),
]
