"""Celery tasks of billing: thin, take ids, retry Stripe failures. Scheduled ones run in the
public schema (`tenant_schemas: ["public"]` in CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

import stripe
from celery import shared_task

from apps.billing import selectors, services
from apps.core.dispatch import dispatch_on_commit


@shared_task(
    name="billing.stripe_event_process",
    autoretry_for=(stripe.StripeError,),
    retry_backoff=True,
    retry_backoff_max=3600,
    max_retries=12,
)
def stripe_event_process_task(*, stripe_event_id: str) -> str:
    return services.stripe_event_process(stripe_event_id=stripe_event_id)


@shared_task(name="billing.stripe_events_retry")
def stripe_events_retry_task() -> int:
    """Re-dispatch events left pending or failed (a lost dispatch, retries exhausted)."""
    ids = selectors.stripe_events_stuck()
    for stripe_event_id in ids:
        dispatch_on_commit(stripe_event_process_task, stripe_event_id=stripe_event_id)
    return len(ids)


@shared_task(name="billing.usage_rollup_and_report")
def usage_rollup_and_report_task() -> dict[str, int]:
    """Hourly: Redis counters → UsageRecord rows → Stripe Billing Meters."""
    written = services.usage_rollup()
    counts = services.usage_report_to_stripe()
    return {"rolled_up": written, **counts}


@shared_task(name="billing.usage_threshold_notify")
def usage_threshold_notify_task(
    *, schema_name: str, metric: str, threshold: int, quota: int, used: int, month: str
) -> None:
    services.usage_threshold_notify(
        schema_name=schema_name,
        metric=metric,
        threshold=threshold,
        quota=quota,
        used=used,
        month=month,
    )
