"""The append-only audit trail: one table in the public schema (operator actions) and one in
each store schema (store actions). The database refuses UPDATE and DELETE on it (a trigger,
migration 0002) and each row carries a SHA-256 hash chained over the previous row's hash."""

from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    class ActorType(models.TextChoices):
        USER = "user", "User"
        API_KEY = "api_key", "API key"
        SYSTEM = "system", "System"

    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    # Plain ids, not foreign keys: the trail outlives the users and keys it names, and a
    # cascade must never reach an append-only table.
    actor_user_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor_api_key_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=255, blank=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=128, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target_idx")]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.action} by {self.actor_label}"
