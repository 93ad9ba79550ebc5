"""Batch recommendation jobs over the API (scope `recommend`), mounted at
/api/v1/recommendations/batch by config/urls_tenant.py.

The download is the one endpoint without an API key: its signed, expiring link (apps.batchjobs.
storage) is what authorises it, and it is only valid on the host of the store that signed it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.http import FileResponse, HttpRequest, JsonResponse
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.apikeys.authentication import ApiKeyAuthentication
from apps.apikeys.permissions import RequireScope
from apps.batchjobs import selectors, services, storage
from apps.batchjobs.models import BatchJob
from apps.core.errors import ApplicationError, error_body
from apps.core.ids import id_clean
from apps.recommendations.serving import LIST_SIZE

FAILURES_PAGE_MAX = 1000


class BatchApi(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [RequireScope("recommend")]


class JobOutput(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    selection = serializers.SerializerMethodField()
    placement = serializers.CharField()
    k = serializers.IntegerField()
    progress = serializers.SerializerMethodField()
    failures_count = serializers.IntegerField()
    model_version = serializers.SerializerMethodField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    download = serializers.SerializerMethodField()

    @extend_schema_field(
        inline_serializer(
            "BatchJobSelection",
            {
                "user_ids": serializers.IntegerField(required=False),
                "segment": serializers.IntegerField(required=False),
                "active_within_days": serializers.IntegerField(required=False),
            },
        )
    )
    def get_selection(self, job: BatchJob) -> dict[str, int]:
        """{kind: value}; for listed shoppers, how many."""
        value = job.total if job.selection == BatchJob.Selection.USER_IDS else job.selection_value
        return {job.selection: value}

    @extend_schema_field(
        inline_serializer(
            "BatchJobProgress",
            {"done": serializers.IntegerField(), "total": serializers.IntegerField()},
        )
    )
    def get_progress(self, job: BatchJob) -> dict[str, int]:
        return {"done": job.done, "total": job.total}

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_model_version(self, job: BatchJob) -> str | None:
        number = job.model_version_number
        return f"v{number}" if number is not None else None

    @extend_schema_field(
        inline_serializer(
            "BatchJobDownload",
            {
                "url": serializers.URLField(),
                "expires_at": serializers.DateTimeField(),
                "bytes": serializers.IntegerField(),
            },
            allow_null=True,
        )
    )
    def get_download(self, job: BatchJob) -> dict[str, Any] | None:
        """A fresh link for a succeeded job (None otherwise)."""
        if job.status != BatchJob.Status.SUCCEEDED or not job.result_name:
            return None
        token, expires = storage.download_token(connection.schema_name, job.pk)
        path = reverse("batch-job-download", kwargs={"job_id": job.pk})
        request = self.context["request"]
        return {
            "url": request.build_absolute_uri(f"{path}?token={token}"),
            "expires_at": datetime.fromtimestamp(expires, tz=UTC).isoformat(),
            "bytes": job.result_bytes,
        }


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(f"Invalid input in: {field}.", fields={field: [message]})


class BatchJobListApi(BatchApi):
    class InputSerializer(serializers.Serializer):
        user_ids = serializers.ListField(child=serializers.JSONField(), required=False)
        segment = serializers.IntegerField(min_value=0, required=False)
        active_within_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)
        placement = serializers.CharField(max_length=64, required=False, allow_blank=True)
        k = serializers.IntegerField(min_value=1, max_value=LIST_SIZE, required=False, default=10)

        def validate_user_ids(self, value: list[Any]) -> list[str]:
            if not value:
                raise serializers.ValidationError("Give at least one shopper id.")
            if len(value) > settings.BATCH_MAX_USER_IDS:
                raise serializers.ValidationError(
                    f"At most {settings.BATCH_MAX_USER_IDS} shopper ids per job."
                )
            cleaned = []
            for position, user_id in enumerate(value):
                try:
                    cleaned.append(id_clean(user_id, field="user_ids"))
                except ApplicationError as exc:
                    message = exc.fields["user_ids"][0]
                    raise serializers.ValidationError(f"Item {position}: {message}") from None
            return list(dict.fromkeys(cleaned))  # a shopper listed twice is listed once

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            unknown = sorted(set(self.initial_data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
            given = [f for f in ("user_ids", "segment", "active_within_days") if f in attrs]
            if len(given) != 1:
                message = "Give exactly one of user_ids, segment and active_within_days."
                names = given or ["user_ids", "segment", "active_within_days"]
                raise serializers.ValidationError({name: [message] for name in names})
            return attrs

    @extend_schema(
        operation_id="recommendation_batch_jobs_list",
        responses=inline_serializer("BatchJobList", {"results": JobOutput(many=True)}),
    )
    def get(self, request):
        jobs = selectors.batch_job_list()
        return Response({"results": JobOutput(jobs, many=True, context={"request": request}).data})

    @extend_schema(
        operation_id="recommendation_batch_jobs_create",
        request=InputSerializer,
        responses={202: JobOutput},
        description=(
            "Personal lists for many shoppers, written as JSON Lines (one shopper a line: "
            "user_id, items [{item_id, score}]) to a file downloadable from an expiring link. "
            "Exactly one of: user_ids (shopper ids), segment (a K-Means segment id of the "
            "active model), active_within_days (shoppers with an event in the last N days). "
            "Optional: placement (a personal placement's rules), k (1-100, default 10)."
        ),
    )
    def post(self, request):
        if not isinstance(request.data, dict):
            raise _invalid("non_field_errors", "A JSON object is required.")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        job = services.batch_job_create(
            user_ids=fields.get("user_ids"),
            segment=fields.get("segment"),
            active_within_days=fields.get("active_within_days"),
            placement=fields.get("placement", ""),
            k=fields["k"],
            actor_api_key=request.auth,
            request=request,
        )
        return Response(
            JobOutput(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED
        )


class BatchJobDetailApi(BatchApi):
    @extend_schema(operation_id="recommendation_batch_jobs_get", responses=JobOutput)
    def get(self, request, job_id):
        job = selectors.batch_job_get(job_id=job_id)
        return Response(JobOutput(job, context={"request": request}).data)


class BatchJobCancelApi(BatchApi):
    @extend_schema(
        operation_id="recommendation_batch_jobs_cancel", request=None, responses=JobOutput
    )
    def post(self, request, job_id):
        job = services.batch_job_cancel(
            job=selectors.batch_job_get(job_id=job_id), actor_api_key=request.auth, request=request
        )
        return Response(JobOutput(job, context={"request": request}).data)


class BatchJobFailuresApi(BatchApi):
    @extend_schema(
        operation_id="recommendation_batch_jobs_failures",
        parameters=[
            OpenApiParameter("offset", int, description="0-1000000000, default 0."),
            OpenApiParameter("limit", int, description=f"1-{FAILURES_PAGE_MAX}, default 100."),
        ],
        responses=inline_serializer(
            "BatchJobFailures",
            {
                "count": serializers.IntegerField(),
                "results": inline_serializer(
                    "BatchJobFailure",
                    {"user_id": serializers.CharField(), "reason": serializers.CharField()},
                    many=True,
                ),
            },
        ),
    )
    def get(self, request, job_id):
        job = selectors.batch_job_get(job_id=job_id)
        offset = _whole(request.query_params, "offset", 0, 0, 1_000_000_000)
        limit = _whole(request.query_params, "limit", 100, 1, FAILURES_PAGE_MAX)
        rows = selectors.batch_job_failures(job=job).values("user_id", "reason")
        return Response(
            {"count": job.failures_count, "results": list(rows[offset : offset + limit])}
        )


def _whole(query, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(name, "A whole number is required.") from None
    if not low <= value <= high:
        raise _invalid(name, f"Must be {low} to {high}.")
    return value


@extend_schema(exclude=True)
def batch_job_download(request: HttpRequest, job_id) -> FileResponse | JsonResponse:
    """The job's result file for a valid, unexpired link signed for this store's job."""
    if request.method != "GET":
        return JsonResponse(error_body("method_not_allowed", "Use GET."), status=405)
    try:
        storage.download_token_check(
            request.GET.get("token", ""), schema_name=connection.schema_name, job_id=job_id
        )
    except storage.LinkRefused as exc:
        code = status.HTTP_410_GONE if exc.code == "link_expired" else status.HTTP_403_FORBIDDEN
        return JsonResponse(error_body(exc.code, exc.message), status=code)
    job = BatchJob.objects.filter(pk=job_id, status=BatchJob.Status.SUCCEEDED).first()
    if job is None or not job.result_name or not default_storage.exists(job.result_name):
        return JsonResponse(error_body("not_found", "No such result."), status=404)
    return FileResponse(
        default_storage.open(job.result_name, "rb"),
        as_attachment=True,
        filename=f"recommendations-{job.pk}.jsonl",
        content_type="application/x-ndjson",
    )
