"""The plans every installation starts with. Plain data, shared by the `seed_plans` command and
the data migration; operators edit the rows in Django admin afterwards (seeding never
overwrites an existing plan)."""

from __future__ import annotations

from typing import Any

FREE_PLAN_CODE = "free"

DEFAULT_PLANS: list[dict[str, Any]] = [
    {
        "code": FREE_PLAN_CODE,
        "name": "Free",
        "sort_order": 0,
        "monthly_price_cents": 0,
        # Sized so a store can load a real history and judge the recommendations before paying.
        "events_per_month": 1_000_000,
        "recommendation_requests_per_month": 100_000,
        "trainings_per_day": 1,
        "team_seats": 2,
        "feature_ab_tests": False,
        "feature_webhooks": False,
        "overage_billed": False,
    },
    {
        "code": "starter",
        "name": "Starter",
        "sort_order": 10,
        "monthly_price_cents": 4_900,
        "events_per_month": 5_000_000,
        "recommendation_requests_per_month": 1_000_000,
        "trainings_per_day": 4,
        "team_seats": 5,
        "feature_ab_tests": False,
        "feature_webhooks": True,
        "overage_billed": False,
    },
    {
        "code": "growth",
        "name": "Growth",
        "sort_order": 20,
        "monthly_price_cents": 19_900,
        "events_per_month": 25_000_000,
        "recommendation_requests_per_month": 10_000_000,
        "trainings_per_day": 24,
        "team_seats": 15,
        "feature_ab_tests": True,
        "feature_webhooks": True,
        "overage_billed": True,
    },
    {
        "code": "enterprise",
        "name": "Enterprise",
        "sort_order": 30,
        "monthly_price_cents": 99_900,
        "events_per_month": 250_000_000,
        "recommendation_requests_per_month": 100_000_000,
        "trainings_per_day": 96,
        "team_seats": None,
        "feature_ab_tests": True,
        "feature_webhooks": True,
        "overage_billed": True,
    },
]
