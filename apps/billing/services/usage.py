"""Usage: monthly quota warnings, the hourly rollup of Redis usage counters into `UsageRecord`
rows, and reporting those rows to Stripe Billing Meters."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import stripe
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.actions import AuditAction
from apps.billing import keys
from apps.billing.gateway import stripe_client
from apps.billing.models import Metric, Subscription, UsageFallback, UsageRecord
from apps.billing.store_notices import billing_audit, billing_notify
from apps.core.cache import redis_client
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

# Hours are rolled up once they are this far in the past, so requests in flight at the hour's
# end are counted; a run looks this far back to catch up on missed runs.
ROLLUP_LAG = timedelta(minutes=5)
ROLLUP_LOOKBACK = timedelta(hours=48)
# Stripe refuses meter events older than 35 days.
METER_MAX_AGE = timedelta(days=35)


@transaction.atomic
def usage_threshold_notify(
    *, schema_name: str, metric: str, threshold: int, quota: int, used: int, month: str
) -> None:
    """Audit and email that the store used `threshold`% of a monthly quota."""
    tenant = Tenant.objects.get(schema_name=schema_name)
    label = Metric(metric).label.lower()
    billing_audit(
        tenant=tenant,
        action=AuditAction.BILLING_QUOTA_THRESHOLD_REACHED,
        actor_label="system",
        details={
            "metric": metric,
            "threshold": threshold,
            "quota": quota,
            "used": used,
            "month": month,
        },
    )
    if threshold >= 100:
        body = f"This month's {label} reached the plan's quota of {quota}."
    else:
        body = f"This month's {label} reached {threshold}% of the plan's quota ({used}/{quota})."
    billing_notify(
        tenant=tenant,
        kind="quota.warning",
        subject=f"{threshold}% of the monthly {label} quota used",
        body=body + " Upgrade on the billing page to raise it.",
    )


def _hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def usage_rollup(*, now: datetime | None = None) -> int:
    """Copy the Redis hour counters of completed hours (ROLLUP_LAG past their end, up to
    ROLLUP_LOOKBACK back) into `UsageRecord` rows. Idempotent: the row takes the counter's
    value, and rows already reported to Stripe are never changed. Returns rows written."""
    now = now or timezone.now()
    last = _hour_floor(now - ROLLUP_LAG) - timedelta(hours=1)
    hour = _hour_floor(now - ROLLUP_LOOKBACK)
    client = redis_client()
    written = 0
    while hour <= last:
        schemas = {member.decode() for member in client.smembers(keys.usage_dirty_key(hour))}
        # Usage counted in PostgreSQL while Redis was down (apps/billing/quotas.py).
        schemas |= set(
            UsageFallback.objects.filter(hour=hour).values_list("tenant__schema_name", flat=True)
        )
        schemas = sorted(schemas)
        if schemas:
            written += _usage_rollup_hour(hour=hour, schemas=schemas)
        hour += timedelta(hours=1)
    return written


@transaction.atomic
def _usage_rollup_hour(*, hour: datetime, schemas: list[str]) -> int:
    tenant_ids = dict(
        Tenant.objects.filter(schema_name__in=schemas).values_list("schema_name", "id")
    )
    pairs = [(schema, metric.value) for schema in schemas for metric in Metric]
    values = redis_client().mget([keys.usage_hour_key(s, m, hour) for s, m in pairs])
    fallback = {
        (schema, metric): quantity
        for schema, metric, quantity in UsageFallback.objects.filter(
            hour=hour, tenant_id__in=tenant_ids.values()
        ).values_list("tenant__schema_name", "metric", "quantity")
    }
    written = 0
    for (schema, metric), raw in zip(pairs, values, strict=True):
        if (raw is None and (schema, metric) not in fallback) or schema not in tenant_ids:
            continue
        quantity = int(raw or 0) + fallback.get((schema, metric), 0)
        record, created = UsageRecord.objects.get_or_create(
            tenant_id=tenant_ids[schema], metric=metric, hour=hour, defaults={"quantity": quantity}
        )
        if created:
            written += 1
        elif (
            record.quantity != quantity and record.report_status == UsageRecord.ReportStatus.PENDING
        ):
            written += UsageRecord.objects.filter(
                pk=record.pk, report_status=UsageRecord.ReportStatus.PENDING
            ).update(quantity=quantity, updated_at=timezone.now())
    return written


def usage_report_to_stripe(*, now: datetime | None = None, limit: int = 5000) -> dict[str, int]:
    """Send pending `UsageRecord` rows to Stripe Billing Meters, one meter event each with the
    deterministic identifier `<schema>:<metric>:<hour>` (also the idempotency key), and mark
    them reported in the same row-locked transaction. A retry skips reported rows, and a row
    sent but not marked (crash) is deduplicated by Stripe on the identifier.

    Rows of stores without a Stripe customer, of metrics without a configured meter
    (STRIPE_METER_EVENTS_*), or older than Stripe accepts become `not_billable`. A Stripe
    failure leaves the row pending for the next run. Returns counts by outcome.
    """
    now = now or timezone.now()
    if not settings.STRIPE_SECRET_KEY:
        logger.warning("meter reporting skipped: STRIPE_SECRET_KEY is unset")
        return {"reported": 0, "not_billable": 0, "failed": 0}
    meters = {
        Metric.EVENTS_INGESTED.value: settings.STRIPE_METER_EVENTS_INGESTED,
        Metric.RECOMMENDATION_REQUESTS.value: settings.STRIPE_METER_RECOMMENDATION_REQUESTS,
    }
    ids = list(
        UsageRecord.objects.filter(report_status=UsageRecord.ReportStatus.PENDING)
        .order_by("hour", "id")
        .values_list("id", flat=True)[:limit]
    )
    counts = {"reported": 0, "not_billable": 0, "failed": 0}
    client = stripe_client() if ids else None
    for record_id in ids:
        try:
            outcome = _usage_report_one(record_id=record_id, meters=meters, now=now, client=client)
        except stripe.StripeError as exc:
            logger.warning(
                "meter event failed", extra={"usage_record": record_id, "error": str(exc)}
            )
            outcome = "failed"
        if outcome:
            counts[outcome] += 1
    return counts


@transaction.atomic
def _usage_report_one(
    *, record_id: int, meters: dict[str, str], now: datetime, client: stripe.StripeClient
) -> str:
    record = (
        UsageRecord.objects.select_for_update(skip_locked=True)
        .select_related("tenant")
        .filter(pk=record_id, report_status=UsageRecord.ReportStatus.PENDING)
        .first()
    )
    if record is None:
        return ""
    customer = (
        Subscription.objects.filter(tenant_id=record.tenant_id)
        .values_list("stripe_customer_id", flat=True)
        .first()
    )
    event_name = meters.get(record.metric, "")
    if not customer or not event_name or record.quantity == 0 or record.hour < now - METER_MAX_AGE:
        record.report_status = UsageRecord.ReportStatus.NOT_BILLABLE
        record.save(update_fields=["report_status", "updated_at"])
        return "not_billable"
    identifier = record.meter_identifier
    client.v1.billing.meter_events.create(
        {
            "event_name": event_name,
            "identifier": identifier,
            "timestamp": int(record.hour.timestamp()),
            "payload": {"stripe_customer_id": customer, "value": str(record.quantity)},
        },
        {"idempotency_key": f"meter-{identifier}"},
    )
    record.report_status = UsageRecord.ReportStatus.REPORTED
    record.reported_at = now
    record.save(update_fields=["report_status", "reported_at", "updated_at"])
    return "reported"
