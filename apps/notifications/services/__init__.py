"""Writes of notifications, one module per subject (as Zulip's `zerver/actions/`):

- `sending`: one event's fan-out to the store's members and webhooks, notification emails,
  marking read, members' preferences;
- `webhooks`: webhook endpoints (create, rotate the secret, delete) and their deliveries;
- `anomalies`: the usage-anomaly check that audits and notifies each new flag.

The public services are re-exported here, so callers write `from apps.notifications import
services` or `from apps.notifications.services import notification_send`."""

from apps.notifications.services.anomalies import ANOMALY_TITLES, usage_anomaly_check
from apps.notifications.services.sending import (
    notification_email_deliver,
    notification_mark_read,
    notification_preferences_set,
    notification_send,
)
from apps.notifications.services.webhooks import (
    RESPONSE_EXCERPT_CHARS,
    WEBHOOK_TIMEOUT_SECONDS,
    webhook_delivery_attempt,
    webhook_delivery_resend,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_retry_delay,
)

__all__ = [
    "ANOMALY_TITLES",
    "RESPONSE_EXCERPT_CHARS",
    "WEBHOOK_TIMEOUT_SECONDS",
    "notification_email_deliver",
    "notification_mark_read",
    "notification_preferences_set",
    "notification_send",
    "usage_anomaly_check",
    "webhook_delivery_attempt",
    "webhook_delivery_resend",
    "webhook_endpoint_create",
    "webhook_endpoint_delete",
    "webhook_endpoint_rotate_secret",
    "webhook_retry_delay",
]
