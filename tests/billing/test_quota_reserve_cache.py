"""A reservation with Redis up costs one script call: it decides on the billing state this
process read last, which the script checks is still the cached one, and it re-reads the
month's PostgreSQL fallback counts only every FALLBACK_RECHECK_SECONDS."""

from __future__ import annotations

import time
import types
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.billing import keys, quotas, usage_fallback
from apps.billing.models import UsageFallback
from apps.billing.selectors import BillingState, usage_month_to_date
from apps.core.cache import redis_client
from apps.core.errors import ApplicationError

pytestmark = pytest.mark.django_db

METRIC = "events_ingested"


def _reserve(tenant, amount: int) -> quotas.Reservation:
    with transaction.atomic():
        reservation = quotas.ingest_reserve(tenant=tenant, amount=amount)
        reservation.settle(amount)
    return reservation


def _cache_state(tenant, *, plan_name: str, quota: int) -> None:
    """What another process caches after the store's plan changed."""
    state = BillingState(
        plan_code=plan_name.lower(),
        plan_name=plan_name,
        status="active",
        overage_billed=False,
        quotas={METRIC: quota, "recommendations_served": None},
        grace_until=None,
    )
    redis_client().set(keys.billing_state_key(tenant.schema_name), state.to_json())


def test_a_plan_changed_in_another_process_applies_to_the_next_batch(alpha):
    # Given this process reserved under the Free plan (and kept that state)
    _reserve(alpha, 5)
    assert usage_month_to_date(alpha)[METRIC] == 5

    # When another process caches a 6-event plan, and a batch of 2 arrives
    _cache_state(alpha, plan_name="Tiny", quota=6)
    with pytest.raises(ApplicationError) as refused:
        _reserve(alpha, 2)

    # Then the batch is refused on the new plan, and nothing was reserved
    assert refused.value.code == "quota_exceeded"
    assert str(refused.value.message) == (
        "Monthly quota of 6 events on the Tiny plan reached (5 used, this batch has 2). "
        "Upgrade on the billing page."
    )
    assert usage_month_to_date(alpha)[METRIC] == 5


def test_a_payment_overdue_state_cached_elsewhere_refuses_and_a_paid_one_resumes(alpha):
    _reserve(alpha, 1)
    state_key = keys.billing_state_key(alpha.schema_name)
    overdue = BillingState(
        plan_code="free",
        plan_name="Free",
        status="past_due",
        overage_billed=False,
        quotas={METRIC: 1000, "recommendations_served": None},
        grace_until=timezone.now() - timedelta(days=1),
    )
    redis_client().set(state_key, overdue.to_json())

    with pytest.raises(ApplicationError) as refused:
        _reserve(alpha, 1)
    _cache_state(alpha, plan_name="Paid", quota=1000)
    _reserve(alpha, 1)

    assert refused.value.code == "payment_overdue"
    assert usage_month_to_date(alpha)[METRIC] == 2


def test_fallback_counts_of_another_process_are_folded_in_after_the_recheck_window(
    alpha, monkeypatch
):
    # Given this process found no fallback counts this month
    _reserve(alpha, 3)
    now = timezone.now()
    # When another process counted 7 events in PostgreSQL during an outage it alone saw
    UsageFallback.objects.create(
        tenant=alpha, metric=METRIC, hour=now.replace(minute=0, second=0, microsecond=0),
        quantity=7,
    )  # fmt: skip
    _reserve(alpha, 1)
    within_window = usage_month_to_date(alpha)[METRIC]
    later = time.monotonic() + usage_fallback.FALLBACK_RECHECK_SECONDS + 1
    monkeypatch.setattr(usage_fallback, "time", types.SimpleNamespace(monotonic=lambda: later))
    _reserve(alpha, 1)

    # Then they are folded in once the window has passed, exactly once
    assert within_window == 3 + 1
    assert usage_month_to_date(alpha)[METRIC] == 3 + 1 + 7 + 1
    _reserve(alpha, 1)
    assert usage_month_to_date(alpha)[METRIC] == 3 + 1 + 7 + 1 + 1
