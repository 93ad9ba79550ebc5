"""`explain=true`: each item's reason, from its candidate source or the rule that moved it,
exact on the small known catalog (no model: popularity lists from PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog.models import Event

pytestmark = pytest.mark.django_db


def reasons(response) -> list[tuple[str, dict]]:
    assert response.status_code == 200, response.json()
    return [(row["item_id"], row["reason"]) for row in response.json()["items"]]


def test_reasons_name_the_rule_that_moved_an_item_else_its_source(catalog, api, placement):
    placement(
        catalog,
        "home",
        rules={
            "filters": {"categories": ["shoes", "bags"]},
            "boosts": [{"when": {"items": ["p4"]}, "weight": 3, "name": "clearance"}],
            "pins": [{"item_id": "p5", "position": 2}],
        },
    )

    response = api(catalog).get(
        "/api/v1/recommendations/users/newcomer?placement=home&explain=true&k=4"
    )

    # p4 5*3=15 first; p5 (hats) is pinned, but a pin obeys the filters: skipped
    assert reasons(response) == [
        (
            "p4",
            {
                "type": "boosted_by",
                "rules": ["clearance"],
                "weight": 3.0,
                "source": {"type": "popular"},
            },
        ),
        ("p1", {"type": "popular"}),
        ("p2", {"type": "popular"}),
        ("p3", {"type": "popular"}),
    ]


def test_a_pin_and_a_top_up_explain_themselves(catalog, api, placement):
    placement(
        catalog,
        "strip",
        scenario="similar",
        rules={"pins": [{"item_id": "p8", "position": 1}]},
    )

    response = api(catalog).get(
        "/api/v1/recommendations/items/p3/similar?placement=strip&explain=true&k=4"
    )

    # candidates: p3's category (bags) by popularity, p3 left out: p4, p8; then the top-up
    assert reasons(response) == [
        ("p8", {"type": "pinned", "position": 1}),
        ("p4", {"type": "similar_to", "item_id": "p3"}),
        ("p1", {"type": "popular"}),
        ("p2", {"type": "popular"}),
    ]


def test_bought_together_and_trending_reasons(catalog, api):
    client = api(catalog)

    together = client.get("/api/v1/recommendations/items/p1/bought-together?explain=true&k=1")
    trending = client.get("/api/v1/recommendations/trending?explain=true&k=3")

    assert reasons(together) == [("p2", {"type": "bought_together", "item_id": "p1"})]
    assert reasons(trending) == [
        ("p1", {"type": "trending_in_category", "category": "shoes"}),
        ("p2", {"type": "trending_in_category", "category": "shoes"}),
        ("p3", {"type": "trending_in_category", "category": "bags"}),
    ]


def test_buy_again_gives_the_usual_gap(catalog, api):
    now = timezone.now()
    with tenant_context(catalog):
        for days_ago in (30, 20, 10):
            Event.objects.create(
                user_id="regular",
                item_id="p3",
                type="purchase",
                timestamp=now - timedelta(days=days_ago),
            )
        Event.objects.create(
            user_id="regular", item_id="p3", type="view", timestamp=now - timedelta(days=1)
        )

    response = api(catalog).get("/api/v1/recommendations/users/regular/buy-again?explain=true&k=2")

    assert reasons(response) == [
        ("p3", {"type": "buy_again", "usual_gap_days": 10.0, "days_since_last": 10.0}),
        ("p1", {"type": "popular"}),
    ]


def test_without_explain_there_is_no_reason(catalog, api):
    response = api(catalog).get("/api/v1/recommendations/users/newcomer?exclude=p1&k=1")

    assert response.json()["items"] == [{"item_id": "p2", "score": 7.0}]
