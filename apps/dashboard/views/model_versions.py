"""The models page (`/models/`): every trained version against its baseline; train now, activate a
version, roll back (JSON for the page's fetch calls, a redirect otherwise)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.billing.entitlements import plan_limit_offer
from apps.core.errors import ApplicationError, error_body
from apps.core.negotiation import wants_json
from apps.dashboard import selectors
from apps.recommendations import selectors as recommendation_selectors
from apps.recommendations import services as recommendation_services
from apps.users.permissions import can, store_member_required


@store_member_required("view")
def models_page(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/models.html",
        {
            **selectors.model_versions_page(),
            "can_train": can(request.membership.role, "train_models"),
            "train_refusal": plan_limit_offer(
                tenant=request.tenant,
                limit="trainings_per_day",
                in_use=recommendation_selectors.trainings_started_today_count(),
            ),
        },
    )


@require_POST
@store_member_required("train_models")
def model_train(request: HttpRequest) -> HttpResponse:
    """Start a training with the store's default configuration. The page's script posts with
    `Accept: application/json` and follows progress on the socket; without it, back to the
    page, which shows the running version."""
    try:
        version = recommendation_services.model_version_start(
            acting_user=request.user, request=request
        )
    except ApplicationError as exc:
        if wants_json(request):
            return JsonResponse(
                error_body(exc.code, exc.message, exc.fields), status=exc.status_code
            )
        messages.error(request, exc.message)
        return redirect("dashboard:models")
    if wants_json(request):
        return JsonResponse(
            {"model_version": version.pk, "number": version.number, "status": version.status},
            status=202,
        )
    messages.success(request, f"Training of {version.label} started.")
    return redirect("dashboard:models")


@require_POST
@store_member_required("train_models")
def model_activate(request: HttpRequest, number: int) -> HttpResponse:
    try:
        version = recommendation_selectors.model_version_get(number=number)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    try:
        recommendation_services.model_version_activate(
            version=version, acting_user=request.user, request=request
        )
        messages.success(request, f"{version.label} now serves this store.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard:models")


@require_POST
@store_member_required("train_models")
def model_rollback(request: HttpRequest) -> HttpResponse:
    try:
        version = recommendation_services.model_version_rollback(
            acting_user=request.user, request=request
        )
        messages.success(request, f"Rolled back: {version.label} serves this store again.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard:models")
