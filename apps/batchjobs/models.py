"""Batch recommendation jobs: one row per job (what it selects, where it stands, where its
result file is) and one row per shopper the job could not list."""

from __future__ import annotations

import uuid

from django.db import models


class BatchJob(models.Model):
    """A request for many shoppers' personal lists at once, written as JSON Lines to the
    default file storage. `result_name` is set only when the job succeeded: the file at that
    name is complete (written under a temporary name first)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Selection(models.TextChoices):
        USER_IDS = "user_ids", "Listed shoppers"
        SEGMENT = "segment", "Segment of the active model"
        ACTIVE_WITHIN_DAYS = "active_within_days", "Shoppers active in the last N days"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    selection = models.CharField(max_length=32, choices=Selection.choices)
    # The segment id or the number of days; null for listed shoppers (kept in storage).
    selection_value = models.IntegerField(null=True, blank=True)
    placement = models.CharField(max_length=64, blank=True)
    k = models.PositiveSmallIntegerField(default=10)
    chunk_size = models.PositiveIntegerField(default=2000)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failures_count = models.PositiveIntegerField(default=0)
    # The model version number the lists came from (None: no model, popularity).
    model_version_number = models.PositiveIntegerField(null=True, blank=True)
    # Storage name of the complete result; empty until the job succeeded.
    result_name = models.CharField(max_length=255, blank=True)
    result_bytes = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by_label = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"], name="batchjob_status_idx")]

    def __str__(self) -> str:
        return f"batch job {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED


class BatchJobFailure(models.Model):
    """A shopper the job could not list, and why; the job goes on without them."""

    job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="failures")
    # The chunk that reported it: a redelivered chunk replaces its own rows.
    chunk = models.PositiveIntegerField(default=0)
    user_id = models.CharField(max_length=128)
    reason = models.CharField(max_length=255)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["user_id"], name="batchjobfailure_user_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.reason}"
