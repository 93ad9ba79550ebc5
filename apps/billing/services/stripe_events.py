"""Stripe webhook intake and handlers: verify and store each delivery once, then apply it at most
once on a worker. Handlers never trust the event's snapshot for subscription state: they
re-fetch the subscription (or invoice) from Stripe, so events may arrive in any order and any
number of times and the mirror still ends up right."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.audit.actions import AuditAction
from apps.billing.gateway import stripe_client
from apps.billing.models import StripeEvent
from apps.billing.selectors import invoices_forget, tenant_for_stripe_customer
from apps.billing.services.subscriptions import (
    from_epoch,
    iso,
    state_forget,
    subscription_apply_remote,
    subscription_locked,
)
from apps.billing.store_notices import billing_audit, billing_notify
from apps.core.dispatch import dispatch_on_commit
from apps.core.errors import ApplicationError
from apps.core.parsers import JsonRefused, json_parse
from apps.tenants.models import Tenant
from apps.tenants.selectors import store_url


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
        # The signature first, on the raw text; the payload is then parsed by the platform's
        # JSON reader (stripe's own parse recursed on deep nesting and took any JSON value).
        stripe.WebhookSignature.verify_header(
            text, signature, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError as exc:
        raise ApplicationError(
            "The Stripe-Signature header does not match this payload, or it is too old.",
            code="invalid_signature",
        ) from exc
    except UnicodeDecodeError as exc:
        raise _not_an_event() from exc
    try:
        data = json_parse(text)
    except JsonRefused as exc:
        raise _not_an_event() from exc
    if not _is_event(data) or "\\u0000" in text:
        raise _not_an_event()
    return _stripe_event_store(data)


_CREATED_MAX = 2**32  # Unix seconds: an event "created" in 2106 is not one


def _not_an_event() -> ApplicationError:
    return ApplicationError("The payload is not a Stripe event.", code="invalid_payload")


def _is_event(data: Any) -> bool:
    """The envelope every Stripe event has: `id` and `type` texts, `created` Unix seconds,
    `data.object` an object (a signed payload is Stripe's, but the store keeps what it trusts)."""
    if not isinstance(data, dict):
        return False
    texts_ok = all(
        isinstance(data.get(key), str) and 0 < len(data[key]) <= 100 and data[key].isprintable()
        for key in ("id", "type")
    )
    created = data.get("created")
    created_ok = created is None or (type(created) is int and 0 < created < _CREATED_MAX)
    payload = data.get("data")
    return (
        texts_ok
        and created_ok
        and isinstance(payload, dict)
        and isinstance(payload.get("object"), dict)
    )


@transaction.atomic
def _stripe_event_store(data: dict[str, Any]) -> tuple[StripeEvent, bool]:
    event, created = StripeEvent.objects.get_or_create(
        stripe_id=str(data["id"])[:100],
        defaults={
            "type": str(data["type"])[:100],
            "api_version": str(data.get("api_version") or "")[:40],
            "livemode": bool(data.get("livemode")),
            "stripe_created_at": from_epoch(data.get("created")) or timezone.now(),
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

    dispatch_on_commit(stripe_event_process_task, stripe_event_id=stripe_event_id)


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
    sub = subscription_locked(tenant)
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
    sub = subscription_locked(tenant)
    if not sub.stripe_customer_id and remote.get("customer"):
        sub.stripe_customer_id = remote["customer"]
        sub.save(update_fields=["stripe_customer_id", "updated_at"])
    subscription_apply_remote(sub=sub, remote=remote, source=event.type)
    if event.type == "customer.subscription.trial_will_end":
        trial_end = from_epoch(remote.get("trial_end"))
        billing_audit(
            tenant=tenant,
            action=AuditAction.BILLING_TRIAL_WILL_END,
            details={"stripe_subscription_id": remote["id"], "trial_end": iso(trial_end)},
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
    sub = subscription_locked(tenant)
    details = {
        "invoice": invoice.get("id"),
        "amount_paid_cents": invoice.get("amount_paid"),
        "currency": invoice.get("currency"),
    }
    if sub.grace_until is not None or sub.payment_failed_at is not None:
        sub.grace_until = None
        sub.payment_failed_at = None
        sub.save(update_fields=["grace_until", "payment_failed_at", "updated_at"])
        billing_audit(tenant=tenant, action=AuditAction.BILLING_PAYMENT_RECOVERED, details=details)
        state_forget(tenant)
    else:
        billing_audit(tenant=tenant, action=AuditAction.BILLING_INVOICE_PAID, details=details)
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
    sub = subscription_locked(tenant)
    now = timezone.now()
    started = sub.grace_until is None
    if started:
        sub.payment_failed_at = now
        sub.grace_until = now + timedelta(days=settings.BILLING_GRACE_DAYS)
        sub.save(update_fields=["payment_failed_at", "grace_until", "updated_at"])
        state_forget(tenant)
    billing_audit(
        tenant=tenant,
        action=AuditAction.BILLING_PAYMENT_FAILED,
        details={
            "invoice": invoice.get("id"),
            "attempt_count": invoice.get("attempt_count"),
            "grace_until": iso(sub.grace_until),
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
        action=AuditAction.BILLING_PAYMENT_ACTION_REQUIRED,
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
