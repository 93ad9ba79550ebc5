"""Attributed revenue at the edges of purchase values: a `value` stored before the events' bound
(1e27 made every summary a 500: its cents overflow Decimal's 28 digits) counts as not sent, and
purchases at the bound add up and are answered."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog.models import Event
from apps.catalog.services import events_ingest
from apps.recommendations.selectors import ANALYTICS_MAX_DAYS, analytics_summaries
from tests.factories import ImpressionFactory, ItemFactory

pytestmark = pytest.mark.django_db


def _purchase(order_id: str, value: float | None) -> dict:
    row = {
        "user_id": "u1",
        "item_id": "a",
        "type": "purchase",
        "order_id": order_id,
        "recommendation_id": "r1",
        "timestamp": (timezone.now() - timedelta(hours=1)).isoformat(),
    }
    if value is not None:
        row["value"] = value
    return row


@pytest.fixture
def served(alpha):
    """A list r1 of item a (price 10.00) served to u1 two hours ago, bought from once with a
    value of 12.50."""
    with tenant_context(alpha):
        ItemFactory(item_id="a", price="10.00")
        ImpressionFactory(
            recommendation_id="r1",
            user_id="u1",
            item_ids=["a"],
            served_at=timezone.now() - timedelta(hours=2),
        )
        result = events_ingest(rows=[_purchase("o-1", 12.5)], source="seed")
        assert (result.accepted, result.errors) == (1, [])
    connection.set_schema_to_public()


@pytest.fixture
def absurd_purchase(alpha, served):
    """A purchase of 1e27 stored before the bound existed (written directly: ingestion refuses
    it now), attributed to r1, with the item's price of the moment."""
    with tenant_context(alpha):
        Event.objects.create(
            user_id="u1",
            item_id="a",
            type="purchase",
            order_id="o-2",
            value=1e27,
            item_price=Decimal("10.00"),
            recommendation_id="r1",
            timestamp=timezone.now() - timedelta(minutes=30),
        )
    connection.set_schema_to_public()


@pytest.mark.parametrize("days", [1, 7, 30, ANALYTICS_MAX_DAYS])
def test_a_stored_absurd_value_counts_as_not_sent_and_the_summary_answers(
    alpha, absurd_purchase, key_client, days
):
    response = key_client(alpha).get(f"/api/v1/analytics/summary?days={days}")

    # 12.50 + the item's price of the moment (10.00) in place of 1e27
    assert response.status_code == 200
    body = response.json()
    assert (body["conversions"], body["revenue"], body["by_day"][-1]["revenue"]) == (1, 22.5, 22.5)


def test_the_dashboards_funnels_over_a_stored_absurd_value_are_computed(alpha, absurd_purchase):
    # The dashboard overview's 7- and 30-day funnels (apps.dashboard.selectors.overview_funnels)
    with tenant_context(alpha):
        funnels = analytics_summaries(windows=(7, 30), currency="USD")

    assert (funnels[7]["revenue"], funnels[30]["revenue"]) == (Decimal("22.50"), Decimal("22.50"))


def test_purchases_at_the_bound_add_up_and_are_answered(alpha, served, key_client):
    with tenant_context(alpha):
        result = events_ingest(rows=[_purchase("o-3", 1e12), _purchase("o-4", 1e12)], source="seed")
    connection.set_schema_to_public()
    assert (result.accepted, result.errors) == (2, [])

    response = key_client(alpha).get("/api/v1/analytics/summary?days=7")

    assert response.status_code == 200
    assert response.json()["revenue"] == 2_000_000_000_012.5
