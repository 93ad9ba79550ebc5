"""Usage anomalies: the last complete minute of a store's API traffic checked against its baseline;
each new flag is audited and notified in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.notifications import anomaly
from apps.notifications.services.sending import notification_send

ANOMALY_TITLES = {
    "spike": "API traffic spike",
    "drop": "API traffic dropped",
    "auth_failures": "Burst of API authentication failures",
    "client_errors": "High API error rate",
}


def usage_anomaly_check(*, now: datetime | None = None) -> list[anomaly.Flag]:
    """Evaluate the last complete minute of the connection's store against its baseline
    (apps.notifications.anomaly). Each new flag (outside its rule's cooldown) writes an audit
    event `usage.anomaly_flagged` and notifies the members (kind usage.anomaly) in one
    transaction. Returns the flags raised."""
    minute = anomaly.minute_of(now or timezone.now()) - 1
    window, since = anomaly.usage_window(end_minute=minute, minutes=anomaly.BASELINE_MINUTES + 1)
    if since is None:
        return []
    *history, current = window
    first = max(0, len(history) - (minute - since))
    raised = []
    for flag in anomaly.detect(history[first:], current, minute):
        if not anomaly.cooldown_claim(flag.rule):
            continue
        _usage_anomaly_raise(flag)
        raised.append(flag)
    return raised


@transaction.atomic
def _usage_anomaly_raise(flag: anomaly.Flag) -> None:
    at = datetime.fromtimestamp(flag.minute * 60, tz=UTC)
    details = {
        "rule": flag.rule,
        "minute": at.isoformat(),
        "observed": round(flag.observed, 4),
        "baseline": round(flag.baseline, 4),
    }
    audit_record(
        action=AuditAction.USAGE_ANOMALY_FLAGGED,
        actor_label="anomaly detector",
        target_type="api_usage",
        target_id=flag.rule,
        details=details,
    )
    notification_send(
        kind="usage.anomaly",
        title=ANOMALY_TITLES[flag.rule],
        body=flag.message,
        link="/",
        data=details,
    )
