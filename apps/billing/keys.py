"""Redis keys and cache keys of billing. Store-level keys go through `apps.core.cache.tenant_key`
with the store's schema named explicitly, so they are the same whichever schema the caller's
connection is on (a request on the store's host, a public-schema Celery task)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from apps.core.cache import tenant_key

# Kept past the rollup window, so a missed hourly run can still be caught up.
HOUR_COUNTER_TTL_SECONDS = 3 * 24 * 3600
MONTH_COUNTER_TTL_SECONDS = 40 * 24 * 3600


def hour_label(moment: datetime) -> str:
    return f"{moment:%Y%m%d%H}"


def month_label(moment: datetime) -> str:
    return f"{moment:%Y%m}"


def usage_hour_key(schema_name: str, metric: str, moment: datetime) -> str:
    return tenant_key("billing", "usage", metric, "h", hour_label(moment), schema_name=schema_name)


def usage_month_key(schema_name: str, metric: str, moment: datetime) -> str:
    return tenant_key("billing", "usage", metric, "m", month_label(moment), schema_name=schema_name)


def usage_notified_key(schema_name: str, metric: str, moment: datetime, threshold: int) -> str:
    return tenant_key(
        "billing",
        "usage",
        metric,
        "notified",
        month_label(moment),
        threshold,
        schema_name=schema_name,
    )


def usage_dirty_key(moment: datetime) -> str:
    """Platform-level set of the store schemas that counted usage in that hour: the rollup
    reads it instead of scanning Redis."""
    return tenant_key(
        "billing", "usage", "dirty", hour_label(moment), schema_name=settings.PUBLIC_SCHEMA_NAME
    )


def billing_state_key(schema_name: str) -> str:
    """The store's cached plan and dunning state (JSON), read by every quota check."""
    return tenant_key("billing", "state", schema_name=schema_name)


def invoices_key(schema_name: str) -> str:
    """The store's recent invoices fetched from Stripe (JSON), shown on the billing page."""
    return tenant_key("billing", "invoices", schema_name=schema_name)


def usage_fallback_folded_key(schema_name: str, metric: str, moment: datetime) -> str:
    """How much of the month's PostgreSQL-counted usage (`UsageFallback`, counted while Redis
    was down) the month counter already includes."""
    return tenant_key(
        "billing", "usage", metric, "fb", month_label(moment), schema_name=schema_name
    )
