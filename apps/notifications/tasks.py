"""Celery tasks of notifications; each runs in the schema it was sent from
(tenant-schemas-celery) and calls one service."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task

from apps.notifications import services


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
    """Run by beat every minute in every store's schema; returns the number of flags raised."""
    return len(services.usage_anomaly_check())
