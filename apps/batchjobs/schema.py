"""OpenAPI details of the batch recommendation jobs API (drf-spectacular view extensions,
loaded by the app config), kept out of the views: what each operation does, the `job_id` path
parameter, and examples of a job request and of its status body as it is answered."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiTypes,
    extend_schema,
    extend_schema_serializer,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

from apps.batchjobs import apis
from apps.batchjobs.models import BatchJob

TAGS = ["Batch jobs"]
REQUEST_HELP = {
    "user_ids": "Shopper ids (the id rule), 1 to BATCH_MAX_USER_IDS; duplicates count once.",
    "segment": "A K-Means segment id of the active model (its segments' shoppers).",
    "active_within_days": "Shoppers with an event in the last N days (1-3650).",
    "placement": "A placement of the `personal` scenario: its rules shape every list.",
    "k": "Items per shopper, 1-100 (default 10).",
}
JOB_HELP = {
    "id": "The job's id: the `job_id` of its status, cancel and failures paths.",
    "selection": "What the job lists: {kind: value}; for listed shoppers, how many.",
    "placement": "The placement applied (empty: none).",
    "k": "Items per shopper.",
    "progress": "Shoppers done out of the total.",
    "failures_count": "Shoppers the job could not list (see the failures path).",
    "model_version": "The model version the lists came from (null: none yet, or popularity).",
    "error": "Why the job failed (empty otherwise).",
    "created_at": "When it was accepted.",
    "started_at": "When a worker started it (null while queued).",
    "finished_at": "When it succeeded, failed or was cancelled (null before).",
    "download": "Succeeded jobs only: a fresh signed link to the JSON Lines file, valid on "
    "this store's host until `expires_at`, no API key needed (null otherwise).",
}


# The views' own serializers, subclassed only to describe each field here (their fields and
# bounds stay the views'); the docstrings are the components' descriptions.
class BatchJobRequestDocumented(apis.BatchJobListApi.InputSerializer):
    """A batch job to start: exactly one of `user_ids`, `segment` and `active_within_days`;
    optionally a `placement` and `k`. Any other field answers 400."""

    def get_fields(self):
        fields = super().get_fields()
        for name, help_text in REQUEST_HELP.items():
            fields[name].help_text = help_text
        return fields


class BatchJobDocumented(apis.JobOutput):
    """A batch job: what it selects, where it stands, and once it succeeded, the link to its
    result file."""

    def get_fields(self):
        fields = super().get_fields()
        # An enum named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] (`BatchJobStatus`).
        fields["status"] = serializers.ChoiceField(
            choices=BatchJob.Status.choices,
            help_text="queued, then running, then succeeded, failed or cancelled.",
        )
        for name, help_text in JOB_HELP.items():
            fields[name].help_text = help_text
        return fields


BATCH_JOB_REQUEST = extend_schema_serializer(component_name="BatchJobRequest")(
    BatchJobRequestDocumented
)
BATCH_JOB = extend_schema_serializer(component_name="BatchJob")(BatchJobDocumented)
JOB_ID = OpenApiParameter(
    "job_id",
    OpenApiTypes.UUID,
    location=OpenApiParameter.PATH,
    description="The job's `id`, as answered when it was created (404 for another store's).",
)
_SCOPE = " Secret key with the `recommend` scope."

JOB_REQUEST = {"user_ids": ["u42", "u43", "gid://shopify/Customer/7"], "k": 20}
JOB_ID_EXAMPLE = "3f1e8c2a-6b4d-4e5f-9a7b-1c2d3e4f5a6b"
JOB_QUEUED = {
    "id": JOB_ID_EXAMPLE,
    "status": "queued",
    "selection": {"user_ids": 3},
    "placement": "",
    "k": 20,
    "progress": {"done": 0, "total": 3},
    "failures_count": 0,
    "model_version": None,
    "error": "",
    "created_at": "2026-05-01T10:00:00Z",
    "started_at": None,
    "finished_at": None,
    "download": None,
}
JOB_SUCCEEDED = {
    **JOB_QUEUED,
    "status": "succeeded",
    "progress": {"done": 3, "total": 3},
    "failures_count": 1,
    "model_version": "v3",
    "started_at": "2026-05-01T10:00:01Z",
    "finished_at": "2026-05-01T10:00:04Z",
    "download": {
        "url": f"https://acme.shelfsense.example/api/v1/recommendations/batch/{JOB_ID_EXAMPLE}"
        "/download?token=eyJzIjoiYWNtZSJ9.c2lnbmF0dXJl",
        "expires_at": "2026-05-01T11:00:04Z",
        "bytes": 412,
    },
}

_REQUEST_EXAMPLES = [
    OpenApiExample("Listed shoppers", value=JOB_REQUEST, request_only=True),
    OpenApiExample(
        "Active shoppers through a placement",
        value={"active_within_days": 30, "placement": "weekly-email", "k": 10},
        request_only=True,
        description="`weekly-email` must be a placement of the `personal` scenario.",
    ),
]
_QUEUED = OpenApiExample("A queued job", value=JOB_QUEUED, response_only=True)
_SUCCEEDED = OpenApiExample(
    "A finished job",
    value=JOB_SUCCEEDED,
    response_only=True,
    description="`download.url` is a fresh signed link on every read; it needs no API key.",
)
_STATUSES = (
    " `status` is one of queued, running, succeeded, failed (`error` says why) or cancelled;"
    " `progress` counts shoppers; `download` is set once the job succeeded: a signed link to "
    "the JSON Lines file (one shopper a line: user_id, items [{item_id, score}]), valid for "
    "this store's host until `expires_at`."
)


class BatchJobListSchema(OpenApiViewExtension):
    target_class = "apps.batchjobs.apis.BatchJobListApi"

    def view_replacement(self):
        @extend_schema_view(
            get=extend_schema(
                summary="List batch jobs",
                responses=inline_serializer("BatchJobList", {"results": BATCH_JOB(many=True)}),
                description="The store's batch jobs, newest first, with their progress."
                + _STATUSES
                + _SCOPE,
                tags=TAGS,
                examples=[
                    OpenApiExample(
                        "One finished job",
                        value={"results": [JOB_SUCCEEDED]},
                        response_only=True,
                    )
                ],
            ),
            post=extend_schema(
                summary="Start a batch job",
                request=BATCH_JOB_REQUEST,
                responses={202: BATCH_JOB},
                description=(
                    "Personal lists for many shoppers, written as JSON Lines (one shopper a "
                    "line: user_id, items [{item_id, score}]) to a file downloadable from an "
                    "expiring link. Exactly one of: user_ids (shopper ids, the id rule; a "
                    "shopper listed twice is listed once), segment (a K-Means segment id of "
                    "the active model), active_within_days (shoppers with an event in the "
                    "last N days, 1-3650). Optional: placement (a personal placement's "
                    "rules), k (1-100, default 10). Answers 202 with the queued job; poll "
                    "`GET .../batch/{job_id}` for its status. 409 `too_many_jobs` when the "
                    "store already runs its maximum of jobs." + _SCOPE
                ),
                tags=TAGS,
                examples=[
                    *_REQUEST_EXAMPLES,
                    OpenApiExample(
                        "The queued job", value=JOB_QUEUED, response_only=True, status_codes=["202"]
                    ),
                ],
            ),
        )
        class Documented(self.target_class):
            pass

        return Documented


class BatchJobDetailSchema(OpenApiViewExtension):
    target_class = "apps.batchjobs.apis.BatchJobDetailApi"

    def view_replacement(self):
        @extend_schema_view(
            get=extend_schema(
                summary="Read a batch job's status",
                responses=BATCH_JOB,
                description="One job's status and progress, and its download link once it "
                "succeeded." + _STATUSES + _SCOPE,
                tags=TAGS,
                parameters=[JOB_ID],
                examples=[_SUCCEEDED, _QUEUED],
            )
        )
        class Documented(self.target_class):
            pass

        return Documented


class BatchJobCancelSchema(OpenApiViewExtension):
    target_class = "apps.batchjobs.apis.BatchJobCancelApi"

    def view_replacement(self):
        @extend_schema_view(
            post=extend_schema(
                summary="Cancel a batch job",
                responses=BATCH_JOB,
                description="Stops a queued or running job: it ends `cancelled` without a "
                "file. A job already finished answers 409 `job_finished`." + _SCOPE,
                tags=TAGS,
                parameters=[JOB_ID],
                examples=[
                    OpenApiExample(
                        "A cancelled job",
                        value={
                            **JOB_QUEUED,
                            "status": "cancelled",
                            "finished_at": "2026-05-01T10:00:02Z",
                        },
                        response_only=True,
                    )
                ],
            )
        )
        class Documented(self.target_class):
            pass

        return Documented


class BatchJobFailuresSchema(OpenApiViewExtension):
    target_class = "apps.batchjobs.apis.BatchJobFailuresApi"

    def view_replacement(self):
        @extend_schema_view(
            get=extend_schema(
                summary="List a batch job's failures",
                description="The shoppers the job could not list and why (the job goes on "
                "without them): `unknown_shopper` for an id the store has never seen, "
                "`error: <kind>` when listing failed; in `offset`/`limit` pages, `count` is "
                "the total." + _SCOPE,
                tags=TAGS,
                parameters=[
                    JOB_ID,
                    OpenApiParameter(
                        "offset", int, description="Failures to skip: 0-1000000000, default 0."
                    ),
                    OpenApiParameter(
                        "limit", int, description="Failures per page: 1-1000, default 100."
                    ),
                ],
                examples=[
                    OpenApiExample(
                        "One failure",
                        value={
                            "count": 1,
                            "results": [
                                {"user_id": "gid://shopify/Customer/7", "reason": "unknown_shopper"}
                            ],
                        },
                        response_only=True,
                    )
                ],
            )
        )
        class Documented(self.target_class):
            pass

        return Documented
