"""API keys of one store, in the store's schema: a key can only ever be found on its own
store's host."""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    class Scope(models.TextChoices):
        INGEST = "ingest", "Ingest catalog and events"
        RECOMMEND = "recommend", "Fetch recommendations"
        MANAGE = "manage", "Manage models and settings"

    name = models.CharField(max_length=100)
    # The visible part of the key (`ss_live_<prefix>_<secret>`), used to find the row.
    prefix = models.CharField(max_length=16, unique=True)
    # SHA-256 hex digest of the whole key; the key itself is never stored.
    secret_hash = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=16, choices=Scope.choices))
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Refreshed at most once a minute per key (see authentication.py), not per request.
    last_used_at = models.DateTimeField(null=True, blank=True)
    # When the members were told the key expires soon (once per key; see api_keys_expiry_notify).
    expiry_notified_at = models.DateTimeField(null=True, blank=True)
    # A user of the public schema; a plain id so the key survives the user's removal.
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def status(self) -> str:
        if self.is_revoked:
            return "revoked"
        if self.is_expired():
            return "expired"
        return "active"
