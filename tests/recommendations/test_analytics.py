"""GET /api/v1/analytics/summary: the one definition of lists served, CTR, conversion and
attributed revenue (apps.recommendations.selectors), exact on a small known data set, per store,
and the same figures on the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.catalog.models import Event, Item
from apps.catalog.services import events_ingest
from apps.recommendations.selectors import analytics_summary
from apps.tenants.hosts import forget_tenant_hosts
from apps.tenants.models import Tenant
from tests.factories import ImpressionFactory, ItemFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _at(day: int, hour: float) -> datetime:
    """`day` days before today (UTC), at `hour` o'clock."""
    today = timezone.now().date()
    return datetime.combine(today - timedelta(days=day), time.min, tzinfo=UTC) + timedelta(
        hours=hour
    )


def _event(user, item, kind, rec, when, value=None):
    row = {
        "user_id": user,
        "item_id": item,
        "type": kind,
        "recommendation_id": rec,
        "timestamp": when.isoformat(),
    }
    if value is not None:
        row["value"] = value
    return row


@pytest.fixture
def known_data(alpha):
    """Two days ago ("Q") and yesterday ("P") in alpha:

    - L1 (u1, [a, b]) served Q 10:00: clicked Q 11:00 (a) and P 00:30 (b); b bought P 01:00 with
      no value (price 25.00 then; 30.00 later); a click at Q 09:00 is before serving.
    - L2 (u2, [a, c]) served P 01:00: c clicked P 01:30; a bought P 02:00 (value 12.5) and
      P 02:30 (no value: price 10.00); a click by another shopper and a click of b (not in the
      list) are not attributed.
    - L3 (no shopper: trending, [b]) served P 02:00: clicked by anyone P 03:00.
    - L5 (u5, [a]) served P 03:00: nothing.
    - L4 (u4, [a]) served 10 days ago (before the window): clicked P 01:00, 9 days later.
    """
    with tenant_context(alpha):
        ItemFactory(item_id="a", price="10.00")
        ItemFactory(item_id="b", price="25.00")
        ItemFactory(item_id="c", price=None)
        ImpressionFactory(
            recommendation_id="r1", user_id="u1", item_ids=["a", "b"], served_at=_at(2, 10)
        )
        ImpressionFactory(
            recommendation_id="r2", user_id="u2", item_ids=["a", "c"], served_at=_at(1, 1)
        )
        ImpressionFactory(recommendation_id="r3", user_id="", item_ids=["b"], served_at=_at(1, 2))
        ImpressionFactory(recommendation_id="r5", user_id="u5", item_ids=["a"], served_at=_at(1, 3))
        ImpressionFactory(
            recommendation_id="r4", user_id="u4", item_ids=["a"], served_at=_at(10, 1)
        )
        result = events_ingest(
            rows=[
                _event("u1", "a", "click", "r1", _at(2, 9)),
                _event("u1", "a", "click", "r1", _at(2, 11)),
                _event("u1", "b", "click", "r1", _at(1, 0.5)),
                _event("u1", "b", "purchase", "r1", _at(1, 1)),
                _event("u1", "a", "view", "r1", _at(1, 1)),
                _event("u2", "c", "click", "r2", _at(1, 1.5)),
                _event("u9", "a", "click", "r2", _at(1, 1.6)),
                _event("u2", "b", "click", "r2", _at(1, 1.7)),
                _event("u2", "a", "purchase", "r2", _at(1, 2), value=12.5),
                _event("u2", "a", "purchase", "r2", _at(1, 2.5)),
                _event("u7", "b", "click", "r3", _at(1, 3)),
                _event("u4", "a", "click", "r4", _at(1, 1)),
            ],
            source="seed",
        )
        assert (result.accepted, result.errors) == (12, [])
        Item.objects.filter(item_id="b").update(price=Decimal("30.00"))
    connection.set_schema_to_public()


def _zero_day(day: int) -> dict:
    return {
        "date": (timezone.now().date() - timedelta(days=day)).isoformat(),
        "lists_served": 0,
        "clicks": 0,
        "ctr": 0.0,
        "conversions": 0,
        "conversion_rate": 0.0,
        "revenue": 0.0,
    }


def test_summary_counts_lists_clicked_converted_and_revenue_exactly(alpha, known_data, key_client):
    client = key_client(alpha, scopes=("ingest",))

    response = client.get("/api/v1/analytics/summary?days=7")

    assert response.status_code == 200
    q, p = _zero_day(2), _zero_day(1)
    q.update(lists_served=1, clicks=1, ctr=1.0)
    p.update(
        lists_served=3,
        clicks=2,
        ctr=0.666667,
        conversions=2,
        conversion_rate=0.666667,
        revenue=47.5,
    )
    assert response.json() == {
        "days": 7,
        "lists_served": 4,
        "clicks": 3,
        "ctr": 0.75,
        "conversions": 2,
        "conversion_rate": 0.5,
        "revenue": 47.5,
        "currency": "USD",
        "by_day": [_zero_day(6), _zero_day(5), _zero_day(4), _zero_day(3), q, p, _zero_day(0)],
    }


def test_purchase_keeps_the_price_of_its_moment(alpha, known_data):
    with tenant_context(alpha):
        prices = list(
            Event.objects.filter(type="purchase")
            .order_by("item_id", "timestamp")
            .values_list("item_id", "value", "item_price")
        )

    assert prices == [
        ("a", 12.5, Decimal("10.00")),
        ("a", None, Decimal("10.00")),
        ("b", None, Decimal("25.00")),
    ]


def test_summary_is_one_query(alpha, known_data, django_assert_num_queries):
    # django-tenants' SET search_path, then the summary itself
    with tenant_context(alpha), django_assert_num_queries(2):
        summary = analytics_summary(days=30, currency="EUR")

    # 30 days include L4, whose click came 9 days after serving: served, never clicked
    assert (summary["lists_served"], summary["clicks"], summary["conversions"]) == (5, 3, 2)
    assert (summary["revenue"], summary["currency"], len(summary["by_day"])) == (
        Decimal("47.50"),
        "EUR",
        30,
    )


def test_summary_api_queries_are_constant(alpha, known_data, key_client, django_assert_num_queries):
    client = key_client(alpha)
    client.get("/api/v1/analytics/summary?days=7")  # the key and the host are cached after this

    # django-tenants' SET search_path, then the summary itself: nothing per day or per row
    with django_assert_num_queries(2):
        response = client.get("/api/v1/analytics/summary?days=90")

    assert response.status_code == 200
    assert len(response.json()["by_day"]) == 90


def test_a_window_of_one_day_sees_only_today(alpha, known_data, key_client):
    response = key_client(alpha).get("/api/v1/analytics/summary?days=1")

    assert response.json()["by_day"] == [_zero_day(0)]
    assert response.json()["lists_served"] == 0


def test_store_b_key_never_sees_store_a_figures(alpha, beta, known_data, key_client):
    with tenant_context(beta):
        ImpressionFactory(recommendation_id="r1", user_id="u1", item_ids=["a"], served_at=_at(1, 5))
    connection.set_schema_to_public()

    from_beta = key_client(beta).get("/api/v1/analytics/summary")
    from_alpha = key_client(alpha).get("/api/v1/analytics/summary")

    assert (from_beta.json()["lists_served"], from_beta.json()["clicks"]) == (1, 0)
    assert from_beta.json()["revenue"] == 0.0
    assert (from_alpha.json()["lists_served"], from_alpha.json()["clicks"]) == (4, 3)


@pytest.mark.parametrize("days", ["0", "91", "-3", "seven", "1.5"])
def test_days_out_of_range_is_400_naming_days(alpha, key_client, days):
    response = key_client(alpha).get(f"/api/v1/analytics/summary?days={days}")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["fields"]) == ["days"]


def test_summary_needs_an_api_key(alpha, store_client):
    response = store_client(alpha).get("/api/v1/analytics/summary")

    assert response.status_code == 401


def test_dashboard_shows_the_api_ctr_and_currency(alpha, known_data, key_client, store_client):
    Tenant.objects.filter(pk=alpha.pk).update(currency="EUR")
    forget_tenant_hosts()  # the hosts' process cache would keep the old row for 5 s
    api = key_client(alpha).get("/api/v1/analytics/summary?days=7").json()
    user = UserFactory()
    MembershipFactory(user=user, tenant=alpha, role="analyst")
    client = store_client(alpha)
    client.force_login(user)

    page = client.get("/").content.decode()

    assert (api["ctr"], api["currency"]) == (0.75, "EUR")
    assert '<td class="num" data-testid="ctr-7">75.00%</td>' in page
    assert "47.50 EUR" in page


@pytest.mark.parametrize(
    ("role", "allowed"), [("owner", True), ("admin", True), ("developer", False)]
)
def test_currency_is_a_store_setting(alpha, store_client, role, allowed):
    user = UserFactory()
    MembershipFactory(user=user, tenant=alpha, role=role)
    client = store_client(alpha)
    client.force_login(user)

    response = client.post("/settings/currency/", {"currency": " eur "})

    currency = Tenant.objects.get(pk=alpha.pk).currency
    with tenant_context(alpha):
        audits = list(
            AuditEvent.objects.filter(action="store.currency_changed").values_list(
                "details", flat=True
            )
        )
    if allowed:
        assert (response.status_code, currency) == (302, "EUR")
        assert audits == [{"from": "USD", "to": "EUR"}]
    else:
        assert (response.status_code, currency, audits) == (403, "USD", [])


@pytest.mark.parametrize("value", ["EU", "EURO", "E1R", ""])
def test_currency_must_be_three_letters(alpha, store_client, value):
    user = UserFactory()
    MembershipFactory(user=user, tenant=alpha, role="owner")
    client = store_client(alpha)
    client.force_login(user)

    response = client.post("/settings/currency/", {"currency": value})

    assert response.status_code == 400
    assert Tenant.objects.get(pk=alpha.pk).currency == "USD"
    with tenant_context(alpha):
        assert AuditEvent.objects.filter(action="store.currency_changed").count() == 0


def test_openapi_documents_the_summary_and_its_response(alpha, store_client):
    schema = store_client(alpha).get("/api/schema/", HTTP_ACCEPT="application/json").json()

    operation = schema["paths"]["/api/v1/analytics/summary"]["get"]
    assert operation["operationId"] == "analytics_summary"
    assert [parameter["name"] for parameter in operation["parameters"]] == ["days"]
    response = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert response == {"$ref": "#/components/schemas/AnalyticsSummaryOutput"}
    summary = schema["components"]["schemas"]["AnalyticsSummaryOutput"]
    assert sorted(summary["properties"]) == sorted(
        [
            "days",
            "lists_served",
            "clicks",
            "ctr",
            "conversions",
            "conversion_rate",
            "revenue",
            "currency",
            "by_day",
        ]
    )
    assert summary["properties"]["by_day"]["items"] == {
        "$ref": "#/components/schemas/AnalyticsDayOutput"
    }
