"""The store's billing page (owner only) and the Stripe webhook endpoint (public domain)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from apps.billing import selectors, services
from apps.core.errors import ApplicationError, json_error_response
from apps.users.permissions import store_member_required


def _overview_context(request: HttpRequest) -> dict:
    tenant = request.tenant
    sub = selectors.subscription_of(tenant)
    state = selectors.billing_state(tenant)
    plans = selectors.plans_offered()
    current = next((plan for plan in plans if plan.code == state.plan_code), None)
    return {
        "sub": sub,
        "state": state,
        "usage": selectors.usage_summary(tenant),
        "plans": plans,
        "current_plan_order": current.sort_order if current is not None else -1,
        "support_email": settings.SUPPORT_EMAIL,
        "invoices": selectors.invoices_recent(tenant, sub=sub),
        "has_live_subscription": sub is not None and sub.status in sub.LIVE_STATUSES,
        "has_customer": sub is not None and bool(sub.stripe_customer_id),
        "checkout": request.GET.get("checkout", ""),
    }


def _render(request: HttpRequest, *, error: ApplicationError | None = None) -> HttpResponse:
    context = _overview_context(request)
    context["error"] = error
    return render(
        request, "billing/overview.html", context, status=error.status_code if error else 200
    )


@require_GET
@store_member_required("manage_billing")
def billing_overview(request: HttpRequest) -> HttpResponse:
    return _render(request)


@require_POST
@store_member_required("manage_billing")
def billing_checkout(request: HttpRequest) -> HttpResponse:
    try:
        url = services.checkout_session_start(
            tenant=request.tenant,
            plan_code=request.POST.get("plan", ""),
            acting_user=request.user,
            request=request,
        )
    except ApplicationError as exc:
        return _render(request, error=exc)
    return HttpResponseRedirect(url, status=303)


@require_POST
@store_member_required("manage_billing")
def billing_portal(request: HttpRequest) -> HttpResponse:
    try:
        url = services.portal_session_start(tenant=request.tenant)
    except ApplicationError as exc:
        return _render(request, error=exc)
    return HttpResponseRedirect(url, status=303)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Verify, store once, answer at once; processing runs in a Celery task. A body over
    DATA_UPLOAD_MAX_MEMORY_SIZE is 413 in the JSON error body (Django's own answer is an
    HTML 400)."""
    try:
        payload = request.body
    except RequestDataTooBig:
        return json_error_response(
            "too_large", "The request body is larger than the upload limit.", 413
        )
    try:
        event, created = services.stripe_event_receive(
            payload=payload, signature=request.headers.get("Stripe-Signature", "")
        )
    except ApplicationError as exc:
        return json_error_response(exc.code, exc.message, exc.status_code)
    return JsonResponse({"received": True, "id": event.stripe_id, "duplicate": not created})
