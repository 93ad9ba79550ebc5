"""Celery tasks of notifications; each runs in the schema it was sent from
(tenant-schemas-celery) and calls one service."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task

from apps.core.activity import Activity, stores_dispatch, stores_recent
from apps.notifications import anomaly, services


@shared_task(
    name="apps.notifications.tasks.notification_email_send",
    autoretry_for=(SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=3600,
    retry_jitter=False,
    max_retries=5,
)
def notification_email_send(*, user_id: int, subject: str, message: str) -> bool:
    return services.notification_email_deliver(user_id=user_id, subject=subject, message=message)


@shared_task(
    name="apps.notifications.tasks.webhook_deliver",
    bind=True,
    max_retries=None,
)
def webhook_deliver(self, *, delivery_id: int, manual: bool = False) -> None:
    """One attempt; on failure, re-queued after the backoff the service returns (the attempt
    count and the cap live on the delivery row, so a lost retry never loops forever). Acked
    late and requeued if the worker process dies mid-attempt: the delivery is retried, not
    lost (the receiver may then see it twice; ShelfSense-Delivery identifies it)."""
    delay = services.webhook_delivery_attempt(delivery_id=delivery_id, manual=manual)
    if delay is not None:
        raise self.retry(countdown=delay, kwargs={"delivery_id": delivery_id, "manual": False})


@shared_task(name="apps.notifications.tasks.usage_anomaly_scan")
def usage_anomaly_scan() -> int:
    """Sent into a store's schema by `usage_anomaly_scan_dispatch`; returns the flags raised."""
    return len(services.usage_anomaly_check())


@shared_task(name="apps.notifications.tasks.usage_anomaly_scan_dispatch")
def usage_anomaly_scan_dispatch() -> int:
    """Beat, in the public schema, every minute: `usage_anomaly_scan` for each store with API
    traffic within its baseline window (a store that went quiet is still watched for an
    hour, so the `drop` rule sees it). Returns the number of stores sent."""
    schemas = stores_recent(Activity.API_TRAFFIC, within_seconds=anomaly.WATCH_SECONDS)
    return stores_dispatch(usage_anomaly_scan, schemas)
