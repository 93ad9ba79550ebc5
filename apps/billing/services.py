"""Writes of billing: plans, Stripe customers and sessions, webhook events, subscription state,
dunning, and usage rollup and meter reporting.

Stripe is the source of truth for subscriptions. Webhook processing never trusts the event's
snapshot for subscription state: it re-fetches the subscription (or invoice) from Stripe, so
events may arrive in any order and any number of times and the mirror still ends up right.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.billing import keys
from apps.billing.gateway import stripe_client, stripe_unavailable
from apps.billing.models import Metric, Plan, StripeEvent, Subscription, UsageFallback, UsageRecord
from apps.billing.notifications import billing_audit, billing_notify
from apps.billing.plans import DEFAULT_PLANS, FREE_PLAN_CODE
from apps.billing.selectors import (
    billing_state_forget,
    invoices_forget,
    plan_for_price,
    subscription_of,
    tenant_for_stripe_customer,
)
from apps.core.cache import redis_client
from apps.core.errors import ApplicationError
from apps.tenants.models import Tenant
from apps.tenants.selectors import store_url
from apps.users.models import User

logger = logging.getLogger(__name__)

# Hours are rolled up once they are this far in the past, so requests in flight at the hour's
# end are counted; a run looks this far back to catch up on missed runs.
ROLLUP_LAG = timedelta(minutes=5)
ROLLUP_LOOKBACK = timedelta(hours=48)
# Stripe refuses meter events older than 35 days.
METER_MAX_AGE = timedelta(days=35)


def _from_epoch(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value else None


def _forget_state(tenant: Tenant) -> None:
    """Drop the cached billing state now and again on commit (a request may re-cache the old
    row while the transaction is open)."""
    schema = tenant.schema_name
    billing_state_forget(schema)
    transaction.on_commit(lambda: billing_state_forget(schema))


# --- Plans --------------------------------------------------------------------------------------


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


def _free_plan_row() -> Plan:
    defaults = {key: value for key, value in DEFAULT_PLANS[0].items() if key != "code"}
    plan, _ = Plan.objects.get_or_create(code=FREE_PLAN_CODE, defaults=defaults)
    return plan


def _subscription_locked(tenant: Tenant) -> Subscription:
    """The store's subscription row, created on the Free plan if missing, locked FOR UPDATE.
    Call inside a transaction."""
    Subscription.objects.get_or_create(tenant=tenant, defaults={"plan": _free_plan_row()})
    return Subscription.objects.select_for_update().select_related("plan").get(tenant=tenant)


# --- Checkout and portal ------------------------------------------------------------------------


@transaction.atomic
def billing_customer_ensure(*, tenant: Tenant, user: User, request=None) -> Subscription:
    """The store's Stripe customer, created once (idempotency key per store, so a retry after
    a rolled-back transaction gets the same customer back). Audited as
    `billing.customer_created`."""
    sub = _subscription_locked(tenant)
    if sub.stripe_customer_id:
        return sub
    try:
        customer = stripe_client().v1.customers.create(
            {
                "email": user.email,
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
        action="billing.customer_created",
        details={"stripe_customer_id": customer.id},
        actor_user=user,
        request=request,
    )
    return sub


def checkout_session_start(*, tenant: Tenant, plan_code: str, user: User, request=None) -> str:
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
    sub = billing_customer_ensure(tenant=tenant, user=user, request=request)
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


# --- Webhooks -----------------------------------------------------------------------------------


def stripe_event_receive(*, payload: bytes, signature: str) -> tuple[StripeEvent, bool]:
    """Verify a webhook delivery (`Stripe-Signature`, STRIPE_WEBHOOK_SECRET, tolerance
    STRIPE_WEBHOOK_TOLERANCE_SECONDS), store it once by Stripe id and schedule its processing
    on commit. Returns (event, created).

    Raises ApplicationError 400 `invalid_signature` / `invalid_payload` (nothing stored), 503
    `billing_unavailable` when no webhook secret is configured.
    """
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise ApplicationError(
            "Stripe webhooks are not configured: STRIPE_WEBHOOK_SECRET is unset.",
            code="billing_unavailable",
            status_code=503,
        )
    try:
        text = payload.decode("utf-8")
        stripe.Webhook.construct_event(
            text, signature, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
        )
        data = json.loads(text)
    except stripe.SignatureVerificationError as exc:
        raise ApplicationError(
            "The Stripe-Signature header does not match this payload, or it is too old.",
            code="invalid_signature",
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApplicationError(
            "The payload is not a Stripe event.", code="invalid_payload"
        ) from exc
    if not isinstance(data, dict) or not data.get("id") or not data.get("type"):
        raise ApplicationError("The payload is not a Stripe event.", code="invalid_payload")
    return _stripe_event_store(data)


@transaction.atomic
def _stripe_event_store(data: dict[str, Any]) -> tuple[StripeEvent, bool]:
    event, created = StripeEvent.objects.get_or_create(
        stripe_id=str(data["id"])[:100],
        defaults={
            "type": str(data["type"])[:100],
            "api_version": str(data.get("api_version") or "")[:40],
            "livemode": bool(data.get("livemode")),
            "stripe_created_at": _from_epoch(data.get("created")) or timezone.now(),
            "payload": data,
        },
    )
    if event.status in (StripeEvent.Status.PENDING, StripeEvent.Status.FAILED):
        # A redelivery of an event not processed yet dispatches again: a lost dispatch heals
        # itself, and processing is idempotent.
        _schedule_event_processing(event.stripe_id)
    return event, created


def _schedule_event_processing(stripe_event_id: str) -> None:
    from apps.billing.tasks import stripe_event_process_task

    transaction.on_commit(lambda: stripe_event_process_task.delay(stripe_event_id=stripe_event_id))


def stripe_event_process(*, stripe_event_id: str) -> str:
    """Apply one stored event, at most once (row lock + status). Returns the final status.

    Handlers resolve the store from the Stripe customer (or the metadata we set) and
    re-fetch the object from Stripe. A Stripe failure marks the event `failed` and re-raises
    so the task retries; an event for no known store is `ignored`.
    """
    try:
        with transaction.atomic():
            event = StripeEvent.objects.select_for_update().get(stripe_id=stripe_event_id)
            if event.status in (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED):
                return event.status
            handler = EVENT_HANDLERS.get(event.type)
            tenant = None
            if handler is not None:
                tenant = handler(event, event.payload.get("data", {}).get("object", {}))
            event.attempts += 1
            event.processed_at = timezone.now()
            event.tenant = tenant
            if handler is None:
                event.status = StripeEvent.Status.IGNORED
                event.last_error = ""
            elif tenant is None:
                event.status = StripeEvent.Status.IGNORED
                event.last_error = "No store matches this event's customer."
            else:
                event.status = StripeEvent.Status.PROCESSED
                event.last_error = ""
            event.save()
            return event.status
    except stripe.StripeError as exc:
        StripeEvent.objects.filter(stripe_id=stripe_event_id).update(
            status=StripeEvent.Status.FAILED,
            attempts=F("attempts") + 1,
            last_error=f"{exc.__class__.__name__}: {exc}"[:2000],
        )
        raise


def _tenant_for_object(obj: dict[str, Any]) -> Tenant | None:
    tenant = tenant_for_stripe_customer(obj.get("customer"))
    if tenant is not None:
        return tenant
    tenant_id = (obj.get("metadata") or {}).get("tenant_id") or obj.get("client_reference_id")
    if tenant_id and str(tenant_id).isdigit():
        return Tenant.objects.filter(pk=int(tenant_id)).exclude(schema_name="public").first()
    return None


def _subscription_fetch(subscription_id: str) -> dict[str, Any]:
    return stripe_client().v1.subscriptions.retrieve(subscription_id).to_dict()


def _handle_checkout_completed(event: StripeEvent, session: dict[str, Any]) -> Tenant | None:
    if session.get("mode") != "subscription" or not session.get("subscription"):
        return _tenant_for_object(session)
    tenant = _tenant_for_object(session)
    if tenant is None:
        return None
    remote = _subscription_fetch(str(session["subscription"]))
    sub = _subscription_locked(tenant)
    if not sub.stripe_customer_id and session.get("customer"):
        sub.stripe_customer_id = session["customer"]
        sub.save(update_fields=["stripe_customer_id", "updated_at"])
    subscription_apply_remote(sub=sub, remote=remote, source=event.type)
    return tenant


def _handle_subscription_event(event: StripeEvent, snapshot: dict[str, Any]) -> Tenant | None:
    tenant = _tenant_for_object(snapshot)
    if tenant is None:
        return None
    remote = _subscription_fetch(str(snapshot["id"]))
    sub = _subscription_locked(tenant)
    if not sub.stripe_customer_id and remote.get("customer"):
        sub.stripe_customer_id = remote["customer"]
        sub.save(update_fields=["stripe_customer_id", "updated_at"])
    subscription_apply_remote(sub=sub, remote=remote, source=event.type)
    if event.type == "customer.subscription.trial_will_end":
        trial_end = _from_epoch(remote.get("trial_end"))
        billing_audit(
            tenant=tenant,
            action="billing.trial_will_end",
            details={"stripe_subscription_id": remote["id"], "trial_end": _iso(trial_end)},
        )
        billing_notify(
            tenant=tenant,
            kind="billing.event",
            subject="your trial ends soon",
            body=f"The trial of the {sub.plan.name} plan ends on {trial_end:%Y-%m-%d}. "
            "Add a payment method to keep the plan."
            if trial_end
            else f"The trial of the {sub.plan.name} plan ends soon.",
        )
    return tenant


def _handle_invoice_paid(event: StripeEvent, invoice: dict[str, Any]) -> Tenant | None:
    tenant = _tenant_for_object(invoice)
    if tenant is None:
        return None
    sub = _subscription_locked(tenant)
    details = {
        "invoice": invoice.get("id"),
        "amount_paid_cents": invoice.get("amount_paid"),
        "currency": invoice.get("currency"),
    }
    if sub.grace_until is not None or sub.payment_failed_at is not None:
        sub.grace_until = None
        sub.payment_failed_at = None
        sub.save(update_fields=["grace_until", "payment_failed_at", "updated_at"])
        billing_audit(tenant=tenant, action="billing.payment_recovered", details=details)
        _forget_state(tenant)
    else:
        billing_audit(tenant=tenant, action="billing.invoice_paid", details=details)
    schema = tenant.schema_name
    transaction.on_commit(lambda: invoices_forget(schema))
    return tenant


def _handle_invoice_payment_failed(event: StripeEvent, snapshot: dict[str, Any]) -> Tenant | None:
    tenant = _tenant_for_object(snapshot)
    if tenant is None:
        return None
    # Re-fetch: a failure delivered after the invoice was paid (retries, reordering) must not
    # start dunning.
    invoice = stripe_client().v1.invoices.retrieve(str(snapshot["id"])).to_dict()
    schema = tenant.schema_name
    transaction.on_commit(lambda: invoices_forget(schema))
    if invoice.get("status") in ("paid", "void"):
        return tenant
    sub = _subscription_locked(tenant)
    now = timezone.now()
    started = sub.grace_until is None
    if started:
        sub.payment_failed_at = now
        sub.grace_until = now + timedelta(days=settings.BILLING_GRACE_DAYS)
        sub.save(update_fields=["payment_failed_at", "grace_until", "updated_at"])
        _forget_state(tenant)
    billing_audit(
        tenant=tenant,
        action="billing.payment_failed",
        details={
            "invoice": invoice.get("id"),
            "attempt_count": invoice.get("attempt_count"),
            "grace_until": _iso(sub.grace_until),
            "grace_started": started,
        },
    )
    billing_notify(
        tenant=tenant,
        kind="billing.event",
        subject="a payment failed",
        body=(
            "We could not collect the latest invoice. Update the payment method by "
            f"{sub.grace_until:%Y-%m-%d %H:%M} UTC; after that, event ingestion pauses until "
            "the invoice is paid."
        ),
    )
    return tenant


def _handle_invoice_action_required(event: StripeEvent, invoice: dict[str, Any]) -> Tenant | None:
    tenant = _tenant_for_object(invoice)
    if tenant is None:
        return None
    billing_audit(
        tenant=tenant,
        action="billing.payment_action_required",
        details={"invoice": invoice.get("id")},
    )
    url = invoice.get("hosted_invoice_url") or store_url(tenant, "/billing/")
    billing_notify(
        tenant=tenant,
        kind="billing.event",
        subject="confirm a payment",
        body=f"Your bank asks you to confirm the latest payment: {url}",
    )
    return tenant


EVENT_HANDLERS: dict[str, Callable[[StripeEvent, dict[str, Any]], Tenant | None]] = {
    "checkout.session.completed": _handle_checkout_completed,
    "customer.subscription.created": _handle_subscription_event,
    "customer.subscription.updated": _handle_subscription_event,
    "customer.subscription.deleted": _handle_subscription_event,
    "customer.subscription.trial_will_end": _handle_subscription_event,
    "invoice.paid": _handle_invoice_paid,
    "invoice.payment_failed": _handle_invoice_payment_failed,
    "invoice.payment_action_required": _handle_invoice_action_required,
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# --- Subscription state -------------------------------------------------------------------------


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
        "current_period_start": _from_epoch(period_start),
        "current_period_end": _from_epoch(period_end),
        "cancel_at_period_end": bool(remote.get("cancel_at_period_end")),
        "trial_end": _from_epoch(remote.get("trial_end")),
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
        plan = _free_plan_row()
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
        action="billing.plan_changed" if plan_changed else "billing.subscription_updated",
        details={
            "source": source,
            "stripe_subscription_id": fields["id"],
            "plan": {"from": previous_plan.code, "to": plan.code},
            "status": {"from": before["status"], "to": new["status"]},
            "cancel_at_period_end": new["cancel_at_period_end"],
            "current_period_end": _iso(new["current_period_end"]),
        },
    )
    _forget_state(sub.tenant)
    return True


@transaction.atomic
def subscription_plan_assign(*, tenant: Tenant, plan_code: str, actor_label: str) -> Subscription:
    """Put a store on a plan without Stripe (operator deals, comped stores, benchmarks): the
    row gets status `active` and no Stripe subscription. A later Stripe event or sync for a
    live Stripe subscription replaces it. Audited as `billing.plan_changed`."""
    plan = Plan.objects.filter(code=plan_code).first()
    if plan is None:
        raise ApplicationError(f"Unknown plan: {plan_code!r}.", fields={"plan": ["Unknown."]})
    sub = _subscription_locked(tenant)
    previous = sub.plan
    sub.plan = plan
    sub.status = Subscription.Status.ACTIVE
    sub.save(update_fields=["plan", "status", "updated_at"])
    billing_audit(
        tenant=tenant,
        action="billing.plan_changed",
        actor_label=actor_label,
        details={"source": "operator", "plan": {"from": previous.code, "to": plan.code}},
    )
    _forget_state(tenant)
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
        sub = _subscription_locked(tenant)
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


# --- Usage ----------------------------------------------------------------------------------------


@transaction.atomic
def usage_threshold_notify(
    *, schema_name: str, metric: str, threshold: int, quota: int, used: int, month: str
) -> None:
    """Audit and email that the store used `threshold`% of a monthly quota."""
    tenant = Tenant.objects.get(schema_name=schema_name)
    label = Metric(metric).label.lower()
    billing_audit(
        tenant=tenant,
        action="billing.quota_threshold_reached",
        actor_label="system",
        details={
            "metric": metric,
            "threshold": threshold,
            "quota": quota,
            "used": used,
            "month": month,
        },
    )
    if threshold >= 100:
        body = f"This month's {label} reached the plan's quota of {quota}."
    else:
        body = f"This month's {label} reached {threshold}% of the plan's quota ({used}/{quota})."
    billing_notify(
        tenant=tenant,
        kind="quota.warning",
        subject=f"{threshold}% of the monthly {label} quota used",
        body=body + " Upgrade on the billing page to raise it.",
    )


def _hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def usage_rollup(*, now: datetime | None = None) -> int:
    """Copy the Redis hour counters of completed hours (ROLLUP_LAG past their end, up to
    ROLLUP_LOOKBACK back) into `UsageRecord` rows. Idempotent: the row takes the counter's
    value, and rows already reported to Stripe are never changed. Returns rows written."""
    now = now or timezone.now()
    last = _hour_floor(now - ROLLUP_LAG) - timedelta(hours=1)
    hour = _hour_floor(now - ROLLUP_LOOKBACK)
    client = redis_client()
    written = 0
    while hour <= last:
        schemas = {member.decode() for member in client.smembers(keys.usage_dirty_key(hour))}
        # Usage counted in PostgreSQL while Redis was down (apps/billing/quotas.py).
        schemas |= set(
            UsageFallback.objects.filter(hour=hour).values_list("tenant__schema_name", flat=True)
        )
        schemas = sorted(schemas)
        if schemas:
            written += _usage_rollup_hour(hour=hour, schemas=schemas)
        hour += timedelta(hours=1)
    return written


@transaction.atomic
def _usage_rollup_hour(*, hour: datetime, schemas: list[str]) -> int:
    tenant_ids = dict(
        Tenant.objects.filter(schema_name__in=schemas).values_list("schema_name", "id")
    )
    pairs = [(schema, metric.value) for schema in schemas for metric in Metric]
    values = redis_client().mget([keys.usage_hour_key(s, m, hour) for s, m in pairs])
    fallback = {
        (schema, metric): quantity
        for schema, metric, quantity in UsageFallback.objects.filter(
            hour=hour, tenant_id__in=tenant_ids.values()
        ).values_list("tenant__schema_name", "metric", "quantity")
    }
    written = 0
    for (schema, metric), raw in zip(pairs, values, strict=True):
        if (raw is None and (schema, metric) not in fallback) or schema not in tenant_ids:
            continue
        quantity = int(raw or 0) + fallback.get((schema, metric), 0)
        record, created = UsageRecord.objects.get_or_create(
            tenant_id=tenant_ids[schema], metric=metric, hour=hour, defaults={"quantity": quantity}
        )
        if created:
            written += 1
        elif (
            record.quantity != quantity and record.report_status == UsageRecord.ReportStatus.PENDING
        ):
            written += UsageRecord.objects.filter(
                pk=record.pk, report_status=UsageRecord.ReportStatus.PENDING
            ).update(quantity=quantity, updated_at=timezone.now())
    return written


def usage_report_to_stripe(*, now: datetime | None = None, limit: int = 5000) -> dict[str, int]:
    """Send pending `UsageRecord` rows to Stripe Billing Meters, one meter event each with the
    deterministic identifier `<schema>:<metric>:<hour>` (also the idempotency key), and mark
    them reported in the same row-locked transaction. A retry skips reported rows, and a row
    sent but not marked (crash) is deduplicated by Stripe on the identifier.

    Rows of stores without a Stripe customer, of metrics without a configured meter
    (STRIPE_METER_EVENTS_*), or older than Stripe accepts become `not_billable`. A Stripe
    failure leaves the row pending for the next run. Returns counts by outcome.
    """
    now = now or timezone.now()
    if not settings.STRIPE_SECRET_KEY:
        logger.warning("meter reporting skipped: STRIPE_SECRET_KEY is unset")
        return {"reported": 0, "not_billable": 0, "failed": 0}
    meters = {
        Metric.EVENTS_INGESTED.value: settings.STRIPE_METER_EVENTS_INGESTED,
        Metric.RECOMMENDATION_REQUESTS.value: settings.STRIPE_METER_RECOMMENDATION_REQUESTS,
    }
    ids = list(
        UsageRecord.objects.filter(report_status=UsageRecord.ReportStatus.PENDING)
        .order_by("hour", "id")
        .values_list("id", flat=True)[:limit]
    )
    counts = {"reported": 0, "not_billable": 0, "failed": 0}
    client = stripe_client() if ids else None
    for record_id in ids:
        try:
            outcome = _usage_report_one(record_id=record_id, meters=meters, now=now, client=client)
        except stripe.StripeError as exc:
            logger.warning(
                "meter event failed", extra={"usage_record": record_id, "error": str(exc)}
            )
            outcome = "failed"
        if outcome:
            counts[outcome] += 1
    return counts


@transaction.atomic
def _usage_report_one(
    *, record_id: int, meters: dict[str, str], now: datetime, client: stripe.StripeClient
) -> str:
    record = (
        UsageRecord.objects.select_for_update(skip_locked=True)
        .select_related("tenant")
        .filter(pk=record_id, report_status=UsageRecord.ReportStatus.PENDING)
        .first()
    )
    if record is None:
        return ""
    customer = (
        Subscription.objects.filter(tenant_id=record.tenant_id)
        .values_list("stripe_customer_id", flat=True)
        .first()
    )
    event_name = meters.get(record.metric, "")
    if not customer or not event_name or record.quantity == 0 or record.hour < now - METER_MAX_AGE:
        record.report_status = UsageRecord.ReportStatus.NOT_BILLABLE
        record.save(update_fields=["report_status", "updated_at"])
        return "not_billable"
    identifier = record.meter_identifier
    client.v1.billing.meter_events.create(
        {
            "event_name": event_name,
            "identifier": identifier,
            "timestamp": int(record.hour.timestamp()),
            "payload": {"stripe_customer_id": customer, "value": str(record.quantity)},
        },
        {"idempotency_key": f"meter-{identifier}"},
    )
    record.report_status = UsageRecord.ReportStatus.REPORTED
    record.reported_at = now
    record.save(update_fields=["report_status", "reported_at", "updated_at"])
    return "reported"
