"""Reads of billing: plans, a store's cached billing state, usage, invoices, revenue."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.billing import keys
from apps.billing.gateway import stripe_client
from apps.billing.models import Metric, Plan, StripeEvent, Subscription
from apps.billing.plans import DEFAULT_PLANS, FREE_PLAN_CODE
from apps.core.cache import redis_client
from apps.core.errors import ApplicationError
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

BILLING_STATE_TTL_SECONDS = 300
# Subscriptions that pay every month, for the revenue summary (trials do not pay yet).
REVENUE_STATUSES = ("active", "past_due")


@dataclass(frozen=True)
class BillingState:
    """What the quota checks need about a store, small enough to cache as JSON in Redis."""

    plan_code: str
    plan_name: str
    status: str
    overage_billed: bool
    quotas: dict[str, int | None]
    grace_until: datetime | None

    def read_only(self, now: datetime) -> bool:
        """Past the dunning grace period: ingestion is refused until an invoice is paid."""
        return self.grace_until is not None and now >= self.grace_until

    def to_json(self) -> str:
        return json.dumps(
            {
                "plan_code": self.plan_code,
                "plan_name": self.plan_name,
                "status": self.status,
                "overage_billed": self.overage_billed,
                "quotas": self.quotas,
                "grace_until": self.grace_until.isoformat() if self.grace_until else None,
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> BillingState:
        data = json.loads(raw)
        grace = data["grace_until"]
        return cls(
            plan_code=data["plan_code"],
            plan_name=data["plan_name"],
            status=data["status"],
            overage_billed=data["overage_billed"],
            quotas=data["quotas"],
            grace_until=datetime.fromisoformat(grace) if grace else None,
        )


def free_plan() -> Plan:
    """The Free plan row; an unsaved copy of the default if operators deleted it."""
    plan = Plan.objects.filter(code=FREE_PLAN_CODE).first()
    return plan if plan is not None else Plan(**DEFAULT_PLANS[0])


def plans_offered() -> QuerySet[Plan]:
    return Plan.objects.filter(is_public=True).order_by("sort_order", "id")


def plan_for_price(price_ids: list[str]) -> Plan | None:
    """The plan whose flat Stripe price is one of a subscription's item prices."""
    if not price_ids:
        return None
    return Plan.objects.filter(stripe_price_id__in=[p for p in price_ids if p]).first()


def subscription_of(tenant: Tenant) -> Subscription | None:
    """The store's subscription row (None: Free, never subscribed). Looked up by schema name,
    so the connection's tenant (a FakeTenant inside `schema_context`) is enough."""
    return (
        Subscription.objects.select_related("plan", "tenant")
        .filter(tenant__schema_name=tenant.schema_name)
        .first()
    )


def tenant_for_stripe_customer(customer_id: str | None) -> Tenant | None:
    if not customer_id:
        return None
    sub = (
        Subscription.objects.select_related("tenant").filter(stripe_customer_id=customer_id).first()
    )
    return sub.tenant if sub else None


def billing_state_compute(tenant: Tenant) -> BillingState:
    sub = subscription_of(tenant)
    plan = sub.plan if sub is not None else free_plan()
    return BillingState(
        plan_code=plan.code,
        plan_name=plan.name,
        status=sub.status if sub is not None else Subscription.Status.NONE,
        overage_billed=plan.overage_billed,
        quotas={metric.value: plan.quota_for(metric) for metric in Metric},
        grace_until=sub.grace_until if sub is not None else None,
    )


def billing_state(tenant: Tenant, *, cached: bytes | None = None) -> BillingState:
    """The store's plan and dunning state from Redis, computed and cached on a miss.
    `cached` is the raw value when the caller already read the key in its own pipeline."""
    if cached is None:
        cached = redis_client().get(keys.billing_state_key(tenant.schema_name))
    if cached is not None:
        return BillingState.from_json(cached)
    state = billing_state_compute(tenant)
    redis_client().set(
        keys.billing_state_key(tenant.schema_name), state.to_json(), ex=BILLING_STATE_TTL_SECONDS
    )
    return state


def billing_state_forget(schema_name: str) -> None:
    """Drop the cached state after a change (services call it on commit)."""
    redis_client().delete(keys.billing_state_key(schema_name))


def usage_month_to_date(tenant: Tenant, *, now: datetime | None = None) -> dict[str, int]:
    """Usage counted this calendar month (UTC), per metric, from the Redis month counters."""
    now = now or timezone.now()
    metrics = list(Metric)
    values = redis_client().mget(
        [keys.usage_month_key(tenant.schema_name, metric, now) for metric in metrics]
    )
    return {metric.value: int(value or 0) for metric, value in zip(metrics, values, strict=True)}


def usage_summary(tenant: Tenant, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Usage against quota for the billing page's bars."""
    state = billing_state(tenant)
    used = usage_month_to_date(tenant, now=now)
    rows = []
    for metric in Metric:
        quota = state.quotas[metric.value]
        percent = min(100, round(100 * used[metric.value] / quota)) if quota else 0
        rows.append(
            {
                "metric": metric.value,
                "label": metric.label,
                "used": used[metric.value],
                "quota": quota,
                "percent": percent,
                "over": quota is not None and used[metric.value] > quota,
            }
        )
    return rows


INVOICES_SHOWN = 12


def invoices_recent(tenant: Tenant, *, sub: Subscription | None) -> list[dict[str, Any]] | None:
    """The store's latest invoices from Stripe, cached for STRIPE_INVOICE_CACHE_SECONDS.
    [] without a Stripe customer; None when Stripe cannot be reached (the page says so)."""
    if sub is None or not sub.stripe_customer_id:
        return []
    key = keys.invoices_key(tenant.schema_name)
    cached = redis_client().get(key)
    if cached is not None:
        return json.loads(cached)
    try:
        page = stripe_client().v1.invoices.list(
            {"customer": sub.stripe_customer_id, "limit": INVOICES_SHOWN}
        )
    except (stripe.StripeError, ApplicationError):
        logger.warning("stripe invoices unavailable", extra={"tenant": tenant.schema_name})
        return None
    invoices = [
        {
            "id": invoice["id"],
            "number": invoice.get("number") or "",
            "status": invoice.get("status") or "",
            "total_cents": invoice.get("total") or 0,
            "currency": (invoice.get("currency") or "usd").upper(),
            "total": f"{(invoice.get('total') or 0) / 100:,.2f}",
            "created": invoice.get("created") or 0,
            "url": invoice.get("hosted_invoice_url") or "",
        }
        for invoice in (item.to_dict() for item in page.data)
    ]
    redis_client().set(key, json.dumps(invoices), ex=settings.STRIPE_INVOICE_CACHE_SECONDS)
    return invoices


def invoices_forget(schema_name: str) -> None:
    redis_client().delete(keys.invoices_key(schema_name))


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency.upper()}"


def mrr_summary() -> dict[str, Any]:
    """Monthly recurring revenue by plan from the mirrored subscriptions that pay (active or
    past due) at each plan's `monthly_price_cents`, totalled per currency; plus the number of
    subscription rows by status. Stripe stays the source of truth for what was invoiced."""
    paying = Q(subscriptions__status__in=REVENUE_STATUSES)
    rows = []
    totals: dict[str, int] = {}
    for plan in Plan.objects.annotate(paying=Count("subscriptions", filter=paying)).order_by(
        "sort_order", "id"
    ):
        mrr_cents = plan.paying * plan.monthly_price_cents
        totals[plan.currency] = totals.get(plan.currency, 0) + mrr_cents
        rows.append(
            {
                "plan": plan.name,
                "paying": plan.paying,
                "price": _money(plan.monthly_price_cents, plan.currency),
                "mrr_cents": mrr_cents,
                "mrr": _money(mrr_cents, plan.currency),
            }
        )
    by_status = dict(
        Subscription.objects.values_list("status").annotate(n=Count("id")).order_by("status")
    )
    return {
        "rows": rows,
        "total_cents": totals,
        "total": ", ".join(_money(c, cur) for cur, c in sorted(totals.items())) or "0.00",
        "by_status": by_status,
        "paying_stores": sum(row["paying"] for row in rows),
    }


def stripe_events_stuck(*, older_than: timedelta = timedelta(minutes=10)) -> list[str]:
    """Ids of events still pending or failed `older_than` after they arrived."""
    cutoff = timezone.now() - older_than
    return list(
        StripeEvent.objects.filter(
            status__in=[StripeEvent.Status.PENDING, StripeEvent.Status.FAILED],
            received_at__lt=cutoff,
        )
        .order_by("stripe_created_at")
        .values_list("stripe_id", flat=True)[:500]
    )
