"""The kinds of notification a store can receive, with their default severity and defaults per
channel. One table, so the preferences page, the services and the docs agree."""

from __future__ import annotations

from dataclasses import dataclass


class Channel:
    IN_APP = "in_app"
    EMAIL = "email"

    # Per-member channels; the store-wide webhook and Slack endpoints subscribe to kinds on the
    # endpoint itself (Settings → Webhooks).
    PERSONAL = (IN_APP, EMAIL)
    LABELS = {IN_APP: "In-app (live)", EMAIL: "Email"}


@dataclass(frozen=True)
class Kind:
    code: str
    label: str
    severity: str
    email_by_default: bool


class Severity:
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"
    CHOICES = [(INFO, "Info"), (WARNING, "Warning"), (CRITICAL, "Critical")]


KINDS: dict[str, Kind] = {
    kind.code: kind
    for kind in (
        Kind("training.finished", "Training finished", Severity.INFO, False),
        Kind("training.failed", "Training failed", Severity.CRITICAL, True),
        Kind("model.activated", "Model activated", Severity.INFO, False),
        Kind("member.joined", "Member joined", Severity.INFO, False),
        Kind("api_key.expiring", "API key expiring", Severity.WARNING, True),
        Kind("usage.anomaly", "Usage anomaly", Severity.CRITICAL, True),
        Kind("quota.warning", "Quota nearly used", Severity.WARNING, True),
        Kind("billing.event", "Billing", Severity.WARNING, True),
    )
}

KIND_CHOICES = [(kind.code, kind.label) for kind in KINDS.values()]


def channel_default(kind: str, channel: str) -> bool:
    """Whether a member who never touched their preferences gets `kind` on `channel`."""
    if channel == Channel.IN_APP:
        return True
    return KINDS[kind].email_by_default
