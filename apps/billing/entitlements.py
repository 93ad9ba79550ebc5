"""What a store's plan allows beyond the metered monthly quotas (apps.billing.quotas): the
features A/B tests and outgoing webhooks, and the limits on team seats and trainings started
per day.

The services that create those things call these checks, so the dashboard, the API and every
other caller get one answer: 403 `plan_upgrade_required`, naming the plan that would allow it.
Operators' commands and the nightly schedule are not limited. Read from the database: these
are rare writes, not the request hot path.
"""

from __future__ import annotations

from typing import Literal

from django.db.models import Q

from apps.billing.models import Plan
from apps.billing.selectors import free_plan, subscription_of
from apps.core.errors import ApplicationError
from apps.tenants.models import Tenant

Feature = Literal["ab_tests", "webhooks"]
FEATURE_NAMES = {"ab_tests": "A/B tests", "webhooks": "Outgoing webhooks"}
LIMIT_NAMES = {
    "team_seats": ("team seat", "team seats"),
    "trainings_per_day": ("training a day", "trainings a day"),
}


def store_plan(tenant: Tenant) -> Plan:
    """The store's current plan (Free when it never subscribed). `tenant` may be the
    connection's tenant, a FakeTenant inside `schema_context` included."""
    sub = subscription_of(tenant)
    return sub.plan if sub is not None else free_plan()


def _upgrade_hint(condition: Q) -> str:
    plan = Plan.objects.filter(condition, is_public=True).order_by("sort_order", "id").first()
    return f" Upgrade to {plan.name} on the billing page." if plan else ""


def _refuse(message: str, field: str | None) -> ApplicationError:
    return ApplicationError(
        message,
        code="plan_upgrade_required",
        status_code=403,
        fields={field: [message]} if field else None,
    )


def plan_feature_offer(*, tenant: Tenant, feature: Feature) -> str | None:
    """None when the store's plan includes `feature`; otherwise the refusal a page shows in
    place of the form (naming the plan that would allow it), so nobody fills in a form only to
    be refused on submit."""
    plan = store_plan(tenant)
    if getattr(plan, f"feature_{feature}"):
        return None
    hint = _upgrade_hint(Q(**{f"feature_{feature}": True}))
    return f"{FEATURE_NAMES[feature]} are not part of the {plan.name} plan.{hint}"


def plan_feature_require(*, tenant: Tenant, feature: Feature, field: str | None = None) -> None:
    refusal = plan_feature_offer(tenant=tenant, feature=feature)
    if refusal is not None:
        raise _refuse(refusal, field)


def plan_limit_offer(
    *, tenant: Tenant, limit: Literal["team_seats", "trainings_per_day"], in_use: int
) -> str | None:
    """None when one more is allowed (`in_use` below the plan's limit, or no limit); otherwise
    the refusal, naming the plan that would allow it."""
    plan = store_plan(tenant)
    allowed = getattr(plan, limit)
    if allowed is None or in_use < allowed:
        return None
    hint = _upgrade_hint(
        Q(**{f"{limit}__isnull": True}) | Q(**{f"{limit}__gt": allowed}),
    )
    singular, plural = LIMIT_NAMES[limit]
    return (
        f"The {plan.name} plan includes {allowed} {singular if allowed == 1 else plural}, "
        f"all in use.{hint}"
    )


def plan_limit_check(
    *,
    tenant: Tenant,
    limit: Literal["team_seats", "trainings_per_day"],
    in_use: int,
    field: str | None = None,
) -> None:
    """Refuse one more when `in_use` already reaches the plan's limit (None: unlimited)."""
    refusal = plan_limit_offer(tenant=tenant, limit=limit, in_use=in_use)
    if refusal is not None:
        raise _refuse(refusal, field)
