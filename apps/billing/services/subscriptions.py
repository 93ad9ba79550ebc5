"""The subscription mirror: the store's row locked for a write, Stripe's subscription copied onto
it (plan, status, period, dunning reset), operator plan assignment and a full re-sync from
Stripe. Stripe is the source of truth; every change is audited in the store's trail."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import stripe
from django.db import transaction
from django.utils import timezone

from apps.audit.actions import AuditAction
from apps.billing.gateway import stripe_client, stripe_unavailable
from apps.billing.models import Plan, Subscription
from apps.billing.selectors import (
    billing_state_forget,
    invoices_forget,
    plan_for_price,
    subscription_of,
)
from apps.billing.services.plans import free_plan_row
from apps.billing.store_notices import billing_audit
from apps.core.errors import ApplicationError
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)


def from_epoch(value: int | None) -> datetime | None:
    """A Stripe timestamp (Unix seconds, or missing) as an aware UTC datetime."""
    return datetime.fromtimestamp(value, tz=UTC) if value else None


def iso(value: datetime | None) -> str | None:
    """`value` for an audit record's JSON details."""
    return value.isoformat() if value else None


def state_forget(tenant: Tenant) -> None:
    """Drop the cached billing state now and again on commit (a request may re-cache the old
    row while the transaction is open)."""
    schema = tenant.schema_name
    billing_state_forget(schema)
    transaction.on_commit(lambda: billing_state_forget(schema))


def subscription_locked(tenant: Tenant) -> Subscription:
    """The store's subscription row, created on the Free plan if missing, locked FOR UPDATE.
    Call inside a transaction."""
    Subscription.objects.get_or_create(tenant=tenant, defaults={"plan": free_plan_row()})
    return Subscription.objects.select_for_update().select_related("plan").get(tenant=tenant)


def _remote_fields(remote: dict[str, Any]) -> dict[str, Any]:
    items = (remote.get("items") or {}).get("data") or []
    prices = [((item.get("price") or {}).get("id") or "") for item in items]
    # Since API 2025-03-31.basil the period lives on the subscription items.
    first = items[0] if items else {}
    period_start = first.get("current_period_start") or remote.get("current_period_start")
    period_end = first.get("current_period_end") or remote.get("current_period_end")
    return {
        "id": remote["id"],
        "status": remote.get("status") or Subscription.Status.INCOMPLETE,
        "prices": prices,
        "current_period_start": from_epoch(period_start),
        "current_period_end": from_epoch(period_end),
        "cancel_at_period_end": bool(remote.get("cancel_at_period_end")),
        "trial_end": from_epoch(remote.get("trial_end")),
    }


def subscription_apply_remote(*, sub: Subscription, remote: dict[str, Any], source: str) -> bool:
    """Mirror a subscription fetched from Stripe onto the store's (locked) row. Returns
    whether anything changed; a change is audited in the store's trail
    (`billing.plan_changed` or `billing.subscription_updated`).

    A late event about an older subscription never replaces the store's live one; a
    subscription that is not live puts the store back on Free and ends any dunning.
    """
    fields = _remote_fields(remote)
    live = fields["status"] in Subscription.LIVE_STATUSES
    if (
        sub.stripe_subscription_id
        and sub.stripe_subscription_id != fields["id"]
        and sub.status in Subscription.LIVE_STATUSES
        and not live
    ):
        logger.info(
            "stale subscription ignored",
            extra={"tenant": sub.tenant_id, "subscription": fields["id"]},
        )
        return False
    if live:
        plan = plan_for_price(fields["prices"])
        if plan is None:
            logger.warning(
                "subscription price matches no plan; plan kept",
                extra={"tenant": sub.tenant_id, "prices": fields["prices"]},
            )
            plan = sub.plan
    else:
        plan = free_plan_row()
    new = {
        "plan_id": plan.pk,
        "status": fields["status"],
        "stripe_subscription_id": fields["id"],
        "current_period_start": fields["current_period_start"],
        "current_period_end": fields["current_period_end"],
        "cancel_at_period_end": fields["cancel_at_period_end"],
        "trial_end": fields["trial_end"],
    }
    if not live:
        new["grace_until"] = None
        new["payment_failed_at"] = None
    before = {name: getattr(sub, name) for name in new}
    sub.synced_at = timezone.now()
    if before == new:
        sub.save(update_fields=["synced_at"])
        return False
    previous_plan = sub.plan
    for name, value in new.items():
        setattr(sub, name, value)
    sub.save()
    plan_changed = previous_plan.pk != plan.pk
    billing_audit(
        tenant=sub.tenant,
        action=(
            AuditAction.BILLING_PLAN_CHANGED
            if plan_changed
            else AuditAction.BILLING_SUBSCRIPTION_UPDATED
        ),
        details={
            "source": source,
            "stripe_subscription_id": fields["id"],
            "plan": {"from": previous_plan.code, "to": plan.code},
            "status": {"from": before["status"], "to": new["status"]},
            "cancel_at_period_end": new["cancel_at_period_end"],
            "current_period_end": iso(new["current_period_end"]),
        },
    )
    state_forget(sub.tenant)
    return True


@transaction.atomic
def subscription_plan_assign(*, tenant: Tenant, plan_code: str, actor_label: str) -> Subscription:
    """Put a store on a plan without Stripe (operator deals, comped stores, benchmarks): the
    row gets status `active` and no Stripe subscription. A later Stripe event or sync for a
    live Stripe subscription replaces it. Audited as `billing.plan_changed`."""
    plan = Plan.objects.filter(code=plan_code).first()
    if plan is None:
        raise ApplicationError(f"Unknown plan: {plan_code!r}.", fields={"plan": ["Unknown."]})
    sub = subscription_locked(tenant)
    previous = sub.plan
    sub.plan = plan
    sub.status = Subscription.Status.ACTIVE
    sub.save(update_fields=["plan", "status", "updated_at"])
    billing_audit(
        tenant=tenant,
        action=AuditAction.BILLING_PLAN_CHANGED,
        actor_label=actor_label,
        details={"source": "operator", "plan": {"from": previous.code, "to": plan.code}},
    )
    state_forget(tenant)
    return sub


def subscription_sync(*, tenant: Tenant) -> Subscription:
    """Re-read the store's subscription from Stripe (recovery after missed webhooks): the live
    one if any, else the most recent. Raises 409 `no_billing_account` without a customer."""
    current = subscription_of(tenant)
    if current is None or not current.stripe_customer_id:
        raise ApplicationError(
            f"The store {tenant.slug} has no Stripe customer.",
            code="no_billing_account",
            status_code=409,
        )
    try:
        page = stripe_client().v1.subscriptions.list(
            {"customer": current.stripe_customer_id, "status": "all", "limit": 20}
        )
    except stripe.StripeError as exc:
        raise stripe_unavailable(exc) from exc
    remotes = sorted(
        (item.to_dict() for item in page.data),
        key=lambda r: (r.get("status") in Subscription.LIVE_STATUSES, r.get("created") or 0),
        reverse=True,
    )
    with transaction.atomic():
        sub = subscription_locked(tenant)
        if remotes:
            subscription_apply_remote(sub=sub, remote=remotes[0], source="sync")
        elif sub.status != Subscription.Status.NONE:
            subscription_apply_remote(
                sub=sub,
                remote={"id": sub.stripe_subscription_id or "", "status": "canceled"},
                source="sync",
            )
        sub.refresh_from_db()
    invoices_forget(tenant.schema_name)
    return sub
