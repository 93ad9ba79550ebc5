"""Billing lives in the public schema: plans, one subscription per store (mirrored from
Stripe), every Stripe webhook event received, and hourly usage per store."""

from __future__ import annotations

from django.db import models


class Metric(models.TextChoices):
    """Metered usage. The values are the Redis counter names and `UsageRecord.metric`."""

    EVENTS_INGESTED = "events_ingested", "Events ingested"
    RECOMMENDATION_REQUESTS = "recommendation_requests", "Recommendation requests"


class Plan(models.Model):
    """What a store may use per month and what it pays. Quotas left empty are unlimited."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    sort_order = models.PositiveSmallIntegerField(default=0)
    # Offered on the billing page's upgrade list (a plan can stay for existing subscribers).
    is_public = models.BooleanField(default=True)
    # Stripe: the flat monthly price, and the metered price attached to the same subscription
    # when overage is billed (fed by Billing Meter events).
    stripe_price_id = models.CharField(max_length=100, blank=True, db_index=True)
    stripe_metered_price_id = models.CharField(max_length=100, blank=True)
    # For the operators' monthly recurring revenue summary; Stripe stays the source of truth.
    monthly_price_cents = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, default="usd")
    events_per_month = models.PositiveBigIntegerField(null=True, blank=True)
    recommendation_requests_per_month = models.PositiveBigIntegerField(null=True, blank=True)
    trainings_per_day = models.PositiveIntegerField(null=True, blank=True)
    team_seats = models.PositiveIntegerField(null=True, blank=True)
    feature_ab_tests = models.BooleanField(default=False)
    feature_webhooks = models.BooleanField(default=False)
    # True: usage past the quota is billed through the metered price. False: blocked (429).
    overage_billed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def price_display(self) -> str:
        return f"{self.monthly_price_cents / 100:,.2f} {self.currency.upper()}"

    def quota_for(self, metric: str) -> int | None:
        return {
            Metric.EVENTS_INGESTED: self.events_per_month,
            Metric.RECOMMENDATION_REQUESTS: self.recommendation_requests_per_month,
        }[Metric(metric)]


class Subscription(models.Model):
    """A store's plan, mirrored from its Stripe subscription (webhooks, `sync_stripe`).

    A store without a row, or with status `none`, is on the Free plan with no Stripe
    subscription. Dunning: `grace_until` is set by the first failed payment and cleared by a
    paid invoice; past it, ingestion is refused.
    """

    class Status(models.TextChoices):
        NONE = "none", "No Stripe subscription"
        INCOMPLETE = "incomplete", "Incomplete"
        INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete, expired"
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        CANCELED = "canceled", "Canceled"
        UNPAID = "unpaid", "Unpaid"
        PAUSED = "paused", "Paused"

    # A subscription in one of these states is the store's current one: Checkout must not
    # start a second, and an older subscription's late events must not replace it.
    LIVE_STATUSES = frozenset({"trialing", "active", "past_due", "unpaid", "paused"})

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="billing_subscription"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NONE)
    stripe_customer_id = models.CharField(max_length=100, unique=True, null=True, blank=True)
    stripe_subscription_id = models.CharField(max_length=100, unique=True, null=True, blank=True)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    trial_end = models.DateTimeField(null=True, blank=True)
    payment_failed_at = models.DateTimeField(null=True, blank=True)
    grace_until = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant_id"]

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.plan_id} ({self.status})"


class StripeEvent(models.Model):
    """Every verified webhook event, stored once by its Stripe id before it is processed."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored (type not handled)"
        FAILED = "failed", "Failed (will retry)"

    stripe_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    api_version = models.CharField(max_length=40, blank=True)
    livemode = models.BooleanField(default=False)
    stripe_created_at = models.DateTimeField()
    payload = models.JSONField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    tenant = models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="stripe_events",
    )
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-stripe_created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.stripe_id} {self.type}"


class UsageRecord(models.Model):
    """Usage of one store for one metric in one UTC hour, rolled up from Redis.

    Reported to a Stripe Billing Meter once, with the identifier `meter_identifier`, so a
    retried report is deduplicated by Stripe as well as skipped by us.
    """

    class ReportStatus(models.TextChoices):
        PENDING = "pending", "Pending"
        REPORTED = "reported", "Reported to Stripe"
        NOT_BILLABLE = "not_billable", "Not billable (no Stripe customer or meter)"

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="usage_records"
    )
    metric = models.CharField(max_length=32, choices=Metric.choices)
    hour = models.DateTimeField()
    quantity = models.PositiveBigIntegerField(default=0)
    report_status = models.CharField(
        max_length=12, choices=ReportStatus.choices, default=ReportStatus.PENDING
    )
    reported_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-hour", "tenant_id", "metric"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "metric", "hour"], name="usage_record_unique_tenant_metric_hour"
            )
        ]
        indexes = [
            models.Index(
                fields=["hour"],
                condition=models.Q(report_status="pending"),
                name="usage_record_pending_hour",
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.metric} {self.hour:%Y-%m-%dT%H} = {self.quantity}"

    @property
    def meter_identifier(self) -> str:
        return meter_identifier(
            schema_name=self.tenant.schema_name, metric=self.metric, hour=self.hour
        )


def meter_identifier(*, schema_name: str, metric: str, hour) -> str:
    """`<schema>:<metric>:<YYYYMMDDTHH>`: deterministic, so a retry reuses it (max 100 chars)."""
    return f"{schema_name}:{metric}:{hour:%Y%m%dT%H}"


class UsageFallback(models.Model):
    """Usage counted in PostgreSQL because Redis was unreachable when it happened (written in
    the same transaction as the usage itself). The hourly rollup adds it to the Redis hour
    counter's value, and the quota reservation folds it into the month counter once Redis is
    back (apps/billing/quotas.py), so usage during an outage is billed and counted."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="usage_fallbacks"
    )
    metric = models.CharField(max_length=32, choices=Metric.choices)
    hour = models.DateTimeField()
    quantity = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-hour", "tenant_id", "metric"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "metric", "hour"], name="usage_fallback_unique_tenant_metric_hour"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.metric} {self.hour:%Y-%m-%d %H}h: {self.quantity}"
