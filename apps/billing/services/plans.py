"""Plans: the default catalogue of plans, seeded once, and the Free plan's row."""

from __future__ import annotations

from django.db import transaction

from apps.billing.models import Plan
from apps.billing.plans import DEFAULT_PLANS, FREE_PLAN_CODE


@transaction.atomic
def plans_seed() -> int:
    """Create the default plans that do not exist yet (by code); never touches existing rows,
    which operators edit in admin. Returns the number created."""
    created = 0
    for data in DEFAULT_PLANS:
        fields = {key: value for key, value in data.items() if key != "code"}
        _, was_created = Plan.objects.get_or_create(code=data["code"], defaults=fields)
        created += int(was_created)
    return created


def free_plan_row() -> Plan:
    """The Free plan's row, created from the defaults if an operator never seeded it."""
    defaults = {key: value for key, value in DEFAULT_PLANS[0].items() if key != "code"}
    plan, _ = Plan.objects.get_or_create(code=FREE_PLAN_CODE, defaults=defaults)
    return plan
