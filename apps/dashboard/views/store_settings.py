"""The settings page (`/settings/`): store name, currency and "seen" event types, webhooks
(create, delete, rotate the secret, resend a delivery) and the member's notification
preferences; its forms live here."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.billing.entitlements import plan_feature_offer
from apps.catalog.validation import EVENT_TYPES
from apps.core.errors import ApplicationError
from apps.dashboard.services import store_currency_set, store_rename, store_seen_types_set
from apps.notifications import selectors as notification_selectors
from apps.notifications import services as notification_services
from apps.notifications.kinds import KINDS, Channel
from apps.notifications.models import WebhookDelivery, WebhookEndpoint
from apps.users.permissions import can, store_member_required


class StoreNameForm(forms.Form):
    name = forms.CharField(max_length=120, label="Store name")


class StoreCurrencyForm(forms.Form):
    currency = forms.CharField(
        max_length=3, label="Currency", help_text="ISO 4217 code of attributed revenue."
    )


class StoreSeenTypesForm(forms.Form):
    use_defaults = forms.BooleanField(required=False, label="Use the defaults")
    seen_event_types = forms.MultipleChoiceField(
        choices=[(kind, kind) for kind in sorted(EVENT_TYPES)],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Events that make an item seen",
        help_text="Left out of exclude_seen lists as soon as the event arrives. Defaults: "
        "purchase, rating, dismiss (purchases stay listable when the model finds repeat buying).",
    )


def _seen_types_initial(tenant) -> StoreSeenTypesForm:
    chosen = tenant.seen_event_types
    return StoreSeenTypesForm({"use_defaults": chosen is None, "seen_event_types": chosen or []})


class WebhookForm(forms.Form):
    url = forms.URLField(max_length=500, label="URL", assume_scheme="https")
    endpoint_format = forms.ChoiceField(choices=WebhookEndpoint.Format.choices, label="Format")
    kinds = forms.MultipleChoiceField(
        choices=[(code, kind.label) for code, kind in KINDS.items()],
        widget=forms.CheckboxSelectMultiple,
        label="Notify on",
    )
    description = forms.CharField(max_length=200, required=False)


def _settings_context(request: HttpRequest, **extra) -> dict:
    user_id = request.user.pk
    matrix = notification_selectors.preference_matrix(user_ids=[user_id])[user_id]
    can_manage = can(request.membership.role, "manage_members")
    return {
        "kinds": KINDS.values(),
        "channels": [(code, Channel.LABELS[code]) for code in Channel.PERSONAL],
        "preferences": [
            (kind, [(channel, matrix[(kind.code, channel)]) for channel in Channel.PERSONAL])
            for kind in KINDS.values()
        ],
        "can_manage": can_manage,
        "name_form": extra.pop("name_form", None) or StoreNameForm({"name": request.tenant.name}),
        "currency_form": extra.pop("currency_form", None)
        or StoreCurrencyForm({"currency": request.tenant.currency}),
        "seen_types_form": extra.pop("seen_types_form", None)
        or _seen_types_initial(request.tenant),
        "webhook_form": extra.pop("webhook_form", None) or WebhookForm(),
        "webhooks_refusal": plan_feature_offer(tenant=request.tenant, feature="webhooks"),
        "endpoints": notification_selectors.webhook_endpoint_list() if can_manage else [],
        "deliveries": (notification_selectors.webhook_delivery_list()[:30] if can_manage else []),
        **extra,
    }


@store_member_required("view")
def settings_page(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/settings.html", _settings_context(request))


@require_POST
@store_member_required("view")
def settings_preferences(request: HttpRequest) -> HttpResponse:
    choices = {
        (code, channel): f"{code}:{channel}" in request.POST
        for code in KINDS
        for channel in Channel.PERSONAL
    }
    notification_services.notification_preferences_set(user=request.user, choices=choices)
    messages.success(request, "Notification preferences saved.")
    return redirect("dashboard:settings")


@require_POST
@store_member_required("manage_members")
def settings_store(request: HttpRequest) -> HttpResponse:
    form = StoreNameForm(request.POST)
    if form.is_valid():
        try:
            store_rename(
                tenant=request.tenant,
                name=form.cleaned_data["name"],
                acting_user=request.user,
                request=request,
            )
            messages.success(request, "Store name saved.")
            return redirect("dashboard:settings")
        except ApplicationError as exc:
            form.add_error("name", exc.message)
    return render(
        request, "dashboard/settings.html", _settings_context(request, name_form=form), status=400
    )


@require_POST
@store_member_required("manage_members")
def settings_currency(request: HttpRequest) -> HttpResponse:
    form = StoreCurrencyForm(request.POST)
    if form.is_valid():
        try:
            store_currency_set(
                tenant=request.tenant,
                currency=form.cleaned_data["currency"],
                acting_user=request.user,
                request=request,
            )
            messages.success(request, "Currency saved.")
            return redirect("dashboard:settings")
        except ApplicationError as exc:
            form.add_error("currency", exc.message)
    return render(
        request,
        "dashboard/settings.html",
        _settings_context(request, currency_form=form),
        status=400,
    )


@require_POST
@store_member_required("manage_members")
def settings_seen_types(request: HttpRequest) -> HttpResponse:
    form = StoreSeenTypesForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        store_seen_types_set(
            tenant=request.tenant,
            event_types=None if data["use_defaults"] else data["seen_event_types"],
            acting_user=request.user,
            request=request,
        )
        messages.success(request, "Seen event types saved.")
        return redirect("dashboard:settings")
    return render(
        request,
        "dashboard/settings.html",
        _settings_context(request, seen_types_form=form),
        status=400,
    )


@require_POST
@store_member_required("manage_members")
def webhook_create(request: HttpRequest) -> HttpResponse:
    form = WebhookForm(request.POST)
    if form.is_valid():
        try:
            endpoint, secret = notification_services.webhook_endpoint_create(
                url=form.cleaned_data["url"],
                kinds=form.cleaned_data["kinds"],
                endpoint_format=form.cleaned_data["endpoint_format"],
                description=form.cleaned_data["description"],
                acting_user=request.user,
                request=request,
            )
        except ApplicationError as exc:
            field = next((name for name in exc.fields if name in form.fields), None)
            form.add_error(field, exc.message)
        else:
            return render(
                request,
                "dashboard/settings.html",
                _settings_context(request, created_secret=secret, created_endpoint=endpoint),
            )
    return render(
        request,
        "dashboard/settings.html",
        _settings_context(request, webhook_form=form),
        status=400,
    )


def _endpoint_or_404(endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise Http404("No such webhook.")
    return endpoint


@require_POST
@store_member_required("manage_members")
def webhook_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(endpoint_id)
    notification_services.webhook_endpoint_delete(
        endpoint=endpoint, acting_user=request.user, request=request
    )
    messages.success(request, f"Webhook {endpoint.url} deleted.")
    return redirect("dashboard:settings")


@require_POST
@store_member_required("manage_members")
def webhook_rotate(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(endpoint_id)
    secret = notification_services.webhook_endpoint_rotate_secret(
        endpoint=endpoint, acting_user=request.user, request=request
    )
    return render(
        request,
        "dashboard/settings.html",
        _settings_context(request, created_secret=secret, created_endpoint=endpoint),
    )


@require_POST
@store_member_required("manage_members")
def delivery_resend(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = WebhookDelivery.objects.filter(pk=delivery_id).first()
    if delivery is None:
        raise Http404("No such delivery.")
    try:
        notification_services.webhook_delivery_resend(
            delivery=delivery, acting_user=request.user, request=request
        )
        messages.success(request, f"Delivery {delivery.pk} queued to be sent again.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard:settings")
