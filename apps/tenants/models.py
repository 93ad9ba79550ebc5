from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

SLUG_VALIDATOR = RegexValidator(
    r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$",
    "3-40 lowercase letters, digits or hyphens, starting with a letter.",
)


class Tenant(TenantMixin):
    """A store. Its data lives in the PostgreSQL schema `schema_name`."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    slug = models.CharField(max_length=40, unique=True, validators=[SLUG_VALIDATOR])
    name = models.CharField(max_length=120)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    suspended_reason = models.CharField(max_length=255, blank=True)
    # ISO 4217 code of the store's prices and attributed revenue (analytics, dashboard).
    currency = models.CharField(max_length=3, default="USD")
    # Event types that make an item "seen" (left out of `exclude_seen` lists as soon as the
    # event arrives); null: the defaults (apps.recommendations.serving.fresh).
    seen_event_types = ArrayField(models.CharField(max_length=16), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Schemas are created by tenant_create (cloned from the template), never as a side
    # effect of save().
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_public(self) -> bool:
        return self.schema_name == "public"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Domain(DomainMixin):
    def __str__(self) -> str:
        return self.domain


class SchemaRecipe(models.Model):
    """The SQL that built the store template schema, recorded statement by statement.

    A new store replays it into its own empty schema (unqualified names resolve there through
    the search path): about a tenth of a second, where django-tenants' `clone_schema` function
    introspects every object of the template and takes seconds.
    `fingerprint` identifies the set of store migrations the recipe was recorded from.
    """

    fingerprint = models.CharField(max_length=64, unique=True)
    statements = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.fingerprint[:12]} ({len(self.statements)} statements)"
