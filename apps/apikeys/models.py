"""API keys of one store, in the store's schema: a key can only ever be found on its own
store's host."""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    class Kind(models.TextChoices):
        # `ss_live_…`: the store's backend; scopes below.
        SECRET = "secret", "Secret"
        # `ss_pub_…`: shipped to browsers (the SDK); track and recommend only, for anonymous
        # sessions or for a shopper named by a user token (apps/apikeys/publishable.py), from
        # the key's allowed origins only.
        PUBLISHABLE = "publishable", "Publishable"

    class Scope(models.TextChoices):
        INGEST = "ingest", "Ingest catalog and events"
        RECOMMEND = "recommend", "Fetch recommendations"
        MANAGE = "manage", "Manage models and settings"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SECRET)
    # Publishable keys only: the storefront origins (`https://shop.example`) a browser may
    # call from; any other origin is refused (CORS and the key check).
    allowed_origins = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    # The visible part of the key (`ss_live_<prefix>_<secret>` or `ss_pub_<prefix>_<secret>`),
    # used to find the row.
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
    def is_publishable(self) -> bool:
        return self.kind == self.Kind.PUBLISHABLE

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


class IdentitySecret(models.Model):
    """The store's identity verification secret: its backend signs user tokens with it
    (HMAC-SHA256), so the SDK can act for a known shopper. HMAC needs the secret itself, so it
    cannot be stored hashed like the keys: it is stored encrypted with PII_ENCRYPTION_KEYS
    (apps.core.pii). One row per store; rotating replaces it."""

    encrypted_secret = models.TextField()
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"identity secret of {self.created_at:%Y-%m-%d}"
