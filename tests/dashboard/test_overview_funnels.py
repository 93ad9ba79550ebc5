"""The overview's 7- and 30-day funnels: one pass over the month (analytics_summaries) that
equals the API's per-window summaries, kept per store for FUNNEL_TTL_SECONDS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.dashboard.selectors import (
    FUNNEL_TTL_SECONDS,
    overview_funnels,
    overview_funnels_forget,
)
from apps.recommendations.selectors import analytics_summaries, analytics_summary
from tests.conftest import _clear_test_redis_keys
from tests.factories import EventFactory, ImpressionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    _clear_test_redis_keys()
    yield
    _clear_test_redis_keys()


def _at(days_ago: int, hour: int = 10) -> datetime:
    day = timezone.now().date() - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _served_and_clicked(list_id: str, *, served: datetime, clicked: datetime | None) -> None:
    ImpressionFactory(recommendation_id=list_id, user_id="u1", item_ids=["a"], served_at=served)
    if clicked is not None:
        EventFactory(
            user_id="u1", item_id="a", type="click", recommendation_id=list_id, timestamp=clicked
        )


def _month(alpha) -> None:
    with tenant_context(alpha):
        # Served 9 days ago, clicked 3 days ago: in the 30-day window, not in the 7-day one.
        _served_and_clicked("old", served=_at(9), clicked=_at(3))
        # Served and clicked inside both windows.
        _served_and_clicked("new", served=_at(2), clicked=_at(1))
        # Served 20 days ago, bought 2 days later.
        ImpressionFactory(recommendation_id="buy", user_id="u1", item_ids=["b"], served_at=_at(20))
        EventFactory(
            user_id="u1", item_id="b", type="purchase", value=12.5, recommendation_id="buy",
            timestamp=_at(18),
        )  # fmt: skip
        # Served today, never clicked; served 40 days ago: outside both windows.
        _served_and_clicked("today", served=_at(0, hour=0), clicked=None)
        _served_and_clicked("ancient", served=_at(40), clicked=_at(39))


def test_one_pass_equals_the_per_window_summaries(alpha):
    _month(alpha)
    with tenant_context(alpha):
        both = analytics_summaries(windows=(30, 7), currency="EUR")
        apart = {days: analytics_summary(days=days, currency="EUR") for days in (7, 30)}

    assert both == apart
    assert [both[7][key] for key in ("lists_served", "clicks", "conversions")] == [2, 1, 0]
    assert [both[30][key] for key in ("lists_served", "clicks", "conversions")] == [4, 2, 1]
    assert both[30]["revenue"] == Decimal("12.50")
    assert both[7]["revenue"] == Decimal("0.00")


def test_overview_keeps_the_funnels_for_a_while(alpha):
    _month(alpha)
    with tenant_context(alpha):
        first = overview_funnels(currency="EUR")
        ImpressionFactory(served_at=_at(1))

        cached = overview_funnels(currency="EUR")
        overview_funnels_forget(currency="EUR")  # what the TTL does a minute later
        fresh = overview_funnels(currency="EUR")

    assert FUNNEL_TTL_SECONDS == 60
    assert cached == first
    assert (first[7]["lists_served"], fresh[7]["lists_served"]) == (2, 3)


def test_stores_never_share_their_funnels(alpha, beta):
    _month(alpha)
    with tenant_context(alpha):
        from_alpha = overview_funnels(currency="EUR")
    with tenant_context(beta):
        from_beta = overview_funnels(currency="EUR")

    assert (from_alpha[30]["lists_served"], from_beta[30]["lists_served"]) == (4, 0)
