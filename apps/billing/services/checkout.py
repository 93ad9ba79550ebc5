"""Checkout and portal: the store's Stripe customer, Checkout Sessions to subscribe, and the
Customer Portal for plan changes, payment methods and cancellation."""

from __future__ import annotations

from typing import Any

import stripe
from django.db import transaction

from apps.audit.actions import AuditAction
from apps.billing.gateway import stripe_client, stripe_unavailable
from apps.billing.models import Plan, Subscription
from apps.billing.selectors import subscription_of
from apps.billing.services.subscriptions import subscription_locked
from apps.billing.store_notices import billing_audit
from apps.core.errors import ApplicationError
from apps.tenants.models import Tenant
from apps.tenants.selectors import store_url
from apps.users.models import User


@transaction.atomic
def billing_customer_ensure(*, tenant: Tenant, acting_user: User, request=None) -> Subscription:
    """The store's Stripe customer, created once (idempotency key per store, so a retry after
    a rolled-back transaction gets the same customer back). Audited as
    `billing.customer_created`."""
    sub = subscription_locked(tenant)
    if sub.stripe_customer_id:
        return sub
    try:
        customer = stripe_client().v1.customers.create(
            {
                "email": acting_user.email,
                "name": tenant.name,
                "metadata": {
                    "tenant_id": str(tenant.pk),
                    "schema_name": tenant.schema_name,
                    "slug": tenant.slug,
                },
            },
            {"idempotency_key": f"shelfsense-customer-{tenant.schema_name}-{tenant.pk}"},
        )
    except stripe.StripeError as exc:
        raise stripe_unavailable(exc) from exc
    sub.stripe_customer_id = customer.id
    sub.save(update_fields=["stripe_customer_id", "updated_at"])
    billing_audit(
        tenant=tenant,
        action=AuditAction.BILLING_CUSTOMER_CREATED,
        details={"stripe_customer_id": customer.id},
        acting_user=acting_user,
        request=request,
    )
    return sub


def checkout_session_start(
    *, tenant: Tenant, plan_code: str, acting_user: User, request=None
) -> str:
    """Start a Stripe Checkout Session (mode=subscription) for `plan_code`; returns its URL.

    Raises ApplicationError: 400 unknown plan (field `plan`); 409 `plan_not_purchasable` (no
    Stripe price, e.g. Free); 409 `subscription_exists` when the store already has a live
    subscription (plan changes go through the portal); 502 when Stripe fails.
    """
    plan = Plan.objects.filter(code=plan_code, is_public=True).first()
    if plan is None:
        raise ApplicationError(
            f"Unknown plan: {plan_code!r}.", fields={"plan": ["Choose one of the offered plans."]}
        )
    if not plan.stripe_price_id:
        raise ApplicationError(
            f"The {plan.name} plan cannot be bought online.",
            code="plan_not_purchasable",
            status_code=409,
            fields={"plan": ["No Stripe price is set for this plan."]},
        )
    current = subscription_of(tenant)
    if current is not None and current.status in Subscription.LIVE_STATUSES:
        raise ApplicationError(
            "This store already has a subscription: change the plan in the billing portal.",
            code="subscription_exists",
            status_code=409,
        )
    sub = billing_customer_ensure(tenant=tenant, acting_user=acting_user, request=request)
    line_items: list[dict[str, Any]] = [{"price": plan.stripe_price_id, "quantity": 1}]
    if plan.stripe_metered_price_id:
        line_items.append({"price": plan.stripe_metered_price_id})
    metadata = {"tenant_id": str(tenant.pk), "schema_name": tenant.schema_name}
    try:
        session = stripe_client().v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "customer": sub.stripe_customer_id,
                "client_reference_id": str(tenant.pk),
                "line_items": line_items,
                "success_url": store_url(tenant, "/billing/?checkout=success"),
                "cancel_url": store_url(tenant, "/billing/?checkout=cancelled"),
                "metadata": {**metadata, "plan": plan.code},
                "subscription_data": {"metadata": metadata},
            }
        )
    except stripe.StripeError as exc:
        raise stripe_unavailable(exc) from exc
    return session.url


def portal_session_start(*, tenant: Tenant) -> str:
    """A Stripe Customer Portal session for plan changes, payment methods and cancellation;
    returns its URL. 409 `no_billing_account` before the store ever subscribed."""
    sub = subscription_of(tenant)
    if sub is None or not sub.stripe_customer_id:
        raise ApplicationError(
            "This store has no billing account yet: choose a plan first.",
            code="no_billing_account",
            status_code=409,
        )
    try:
        session = stripe_client().v1.billing_portal.sessions.create(
            {"customer": sub.stripe_customer_id, "return_url": store_url(tenant, "/billing/")}
        )
    except stripe.StripeError as exc:
        raise stripe_unavailable(exc) from exc
    return session.url
