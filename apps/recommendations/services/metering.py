"""Impressions queued by serving, persisted to PostgreSQL and metered as billable requests."""

from __future__ import annotations

from django.db import connection

from apps.billing.quotas import usage_record
from apps.recommendations.services.common import store_schema


def impressions_persist_and_meter() -> int:
    """Copy the store's queued impressions into PostgreSQL and count them as billable
    recommendation requests (one usage increment per batch, not per request)."""
    from apps.recommendations.impressions import impressions_persist

    written = impressions_persist(schema_name=store_schema())
    if written:
        tenant = getattr(connection, "tenant", None)
        if tenant is not None:
            usage_record(tenant=tenant, metric="recommendation_requests", amount=written)
    return written
