"""Notifications of one store, in the store's schema: what members see in the app, their
preferences, and the store's outgoing webhooks with a log of every delivery attempt.

Users live in the public schema, so recipients are plain user ids (no cross-schema foreign
keys: a user's deletion from the public schema must never cascade into store tables)."""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from apps.notifications.kinds import KIND_CHOICES, Severity


class Notification(models.Model):
    """One notification for one member (read state is personal)."""

    user_id = models.BigIntegerField()
    kind = models.CharField(max_length=32, choices=KIND_CHOICES)
    severity = models.CharField(max_length=16, choices=Severity.CHOICES, default=Severity.INFO)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    # A path on the store's own site (e.g. /models/3/), never an outside URL.
    link = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    read = models.BooleanField(default=False)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user_id", "read", "-created_at"], name="notification_inbox"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.title}"


class NotificationPreference(models.Model):
    """A member's choice for one kind on one personal channel; no row means the default
    (`apps.notifications.kinds.channel_default`)."""

    user_id = models.BigIntegerField()
    kind = models.CharField(max_length=32, choices=KIND_CHOICES)
    channel = models.CharField(max_length=16)
    enabled = models.BooleanField()

    class Meta:
        ordering = ["user_id", "kind", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "kind", "channel"], name="notification_pref_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}/{self.channel}: {self.enabled}"


class WebhookEndpoint(models.Model):
    """An outgoing webhook of the store: a signed ShelfSense JSON POST, or a Slack incoming
    webhook (Slack's `{"text": ...}` body; Slack does not check signatures)."""

    class Format(models.TextChoices):
        SHELFSENSE = "shelfsense", "Signed JSON (ShelfSense)"
        SLACK = "slack", "Slack incoming webhook"

    url = models.URLField(max_length=500)
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.SHELFSENSE)
    description = models.CharField(max_length=200, blank=True)
    kinds = ArrayField(models.CharField(max_length=32, choices=KIND_CHOICES))
    # The HMAC key must be readable to sign each delivery, so it cannot be stored hashed; it is
    # shown once at creation and can be rotated.
    secret = models.CharField(max_length=80)
    is_active = models.BooleanField(default=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One notification sent to one endpoint; the body is fixed when the delivery is created so
    every retry (and a manual re-send) signs and sends the same bytes."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    kind = models.CharField(max_length=32, choices=KIND_CHOICES)
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} → {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery: the log shown in Settings → Webhooks."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_ms = models.PositiveIntegerField()
    error = models.CharField(max_length=300, blank=True)
    manual = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["delivery_id", "number"]

    def __str__(self) -> str:
        return f"{self.delivery_id}#{self.number}: {self.status_code}"
