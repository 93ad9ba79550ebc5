"""Reads of the audit trail of the current schema."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from apps.audit.chain import GENESIS_HASH, chain_hash
from apps.audit.models import AuditEvent


def audit_event_list(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    action: str = "",
    target_type: str = "",
    target_id: str = "",
) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    if until is not None:
        events = events.filter(occurred_at__lt=until)
    if action:
        events = events.filter(action=action)
    if target_type:
        events = events.filter(target_type=target_type)
    if target_id:
        events = events.filter(target_id=str(target_id))
    return events


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_broken_id: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.first_broken_id is None


def audit_chain_verify() -> ChainReport:
    """Walk the current schema's trail in id order and report the first row whose link is
    broken: its prev_hash is not the previous row's hash (a row was removed or inserted), or
    its hash does not match its content (a row was altered)."""
    expected_prev = GENESIS_HASH
    checked = 0
    for event in AuditEvent.objects.order_by("id").iterator(2000):
        if event.prev_hash != expected_prev:
            return ChainReport(
                checked, event.pk, "prev_hash does not match the previous row's hash"
            )
        if chain_hash(event.prev_hash, event) != event.hash:
            return ChainReport(checked, event.pk, "hash does not match the row's content")
        expected_prev = event.hash
        checked += 1
    return ChainReport(checked)
