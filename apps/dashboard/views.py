"""Store dashboard pages. Every page goes through `store_member_required(action)` (login,
membership of the host's store, role per apps.users.permissions) and stays thin: parse input,
call one selector or service, render."""

from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.audit.selectors import audit_event_list
from apps.audit.services import audit_export_csv
from apps.catalog.models import Event, Item
from apps.catalog.selectors import event_counters, item_list, shopper_events
from apps.core.errors import ApplicationError, error_body
from apps.core.ids import id_lookup
from apps.core.negotiation import wants_json
from apps.dashboard import selectors
from apps.dashboard.services import store_currency_set, store_rename
from apps.notifications import selectors as notification_selectors
from apps.notifications import services as notification_services
from apps.notifications.kinds import KINDS, Channel
from apps.notifications.models import WebhookDelivery, WebhookEndpoint
from apps.recommendations import selectors as recommendation_selectors
from apps.recommendations import services as recommendation_services
from apps.users.models import Invitation
from apps.users.permissions import can, store_member_required
from apps.users.services import invitation_revoke

PAGE_SIZE = 25


def _page(request: HttpRequest, queryset, size: int = PAGE_SIZE):
    return Paginator(queryset, size).get_page(request.GET.get("page"))


# --- Overview -------------------------------------------------------------------------------


@store_member_required("view")
def overview(request: HttpRequest) -> HttpResponse:
    counters = event_counters()
    context = {
        "events_today": [
            (code, label, counters.get(code, 0)) for code, label in Event.Type.choices
        ],
        "events_chart": selectors.events_per_day(),
        "anomalies": selectors.recent_anomalies(),
        "snapshot": selectors.store_snapshot(),
        "recommendations_ready": selectors.recommendations_ready(),
    }
    if context["recommendations_ready"]:
        currency = request.tenant.currency
        funnel_30 = recommendation_selectors.analytics_summary(days=30, currency=currency)
        context.update(
            funnel_7=recommendation_selectors.analytics_summary(days=7, currency=currency),
            funnel_30=funnel_30,
            ctr_chart=selectors.ctr_chart(summary=funnel_30),
            **selectors.model_summary(),
        )
    return render(request, "dashboard/overview.html", context)


# --- Catalog and shoppers -------------------------------------------------------------------


def _id_or_404(value: str, *, field: str) -> str:
    """An id from the URL; one that no stored id can be (NUL, too long) is simply not found."""
    try:
        return id_lookup(value, field=field)
    except ApplicationError:
        raise Http404("No such id.") from None


@store_member_required("view")
def items(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    category = request.GET.get("category", "").strip()
    found = item_list(category=category or None)
    if query:
        found = found.filter(Q(title__icontains=query) | Q(item_id__icontains=query))
    return render(
        request,
        "dashboard/items.html",
        {"page": _page(request, found.order_by("title", "id")), "q": query, "category": category},
    )


@store_member_required("view")
def item_detail(request: HttpRequest, item_id: str) -> HttpResponse:
    item_id = _id_or_404(item_id, field="item_id")
    item = Item.objects.filter(item_id=item_id, is_hidden=False).first()
    if item is None:
        raise Http404("No such item.")
    return render(
        request,
        "dashboard/item_detail.html",
        {
            "item": item,
            "recommendations_ready": selectors.recommendations_ready(),
            **(
                selectors.item_recommendations(item_id=item.item_id)
                if selectors.recommendations_ready()
                else {}
            ),
        },
    )


@store_member_required("view")
def shoppers(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    found = selectors.shopper_search(query=query)
    return render(request, "dashboard/shoppers.html", {"page": _page(request, found), "q": query})


@store_member_required("view")
def shopper_detail(request: HttpRequest, user_id: str) -> HttpResponse:
    user_id = _id_or_404(user_id, field="user_id")
    history = list(shopper_events(user_id=user_id)[:100])
    profile = selectors.shopper_profile(user_id=user_id)
    if profile is None and not history:
        raise Http404("No such shopper.")
    return render(
        request,
        "dashboard/shopper_detail.html",
        {
            "user_id": user_id,
            "profile": profile,
            "history": history,
            "recommendations_ready": selectors.recommendations_ready(),
            **(
                selectors.shopper_recommendations(user_id=user_id)
                if selectors.recommendations_ready()
                else {}
            ),
        },
    )


# --- Models ---------------------------------------------------------------------------------


@store_member_required("view")
def models_page(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/models.html",
        {
            **selectors.model_versions_page(),
            "can_train": can(request.membership.role, "train_models"),
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
            started_by=request.user, request=request
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
            version=version, actor_user=request.user, request=request
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
            actor_user=request.user, request=request
        )
        messages.success(request, f"Rolled back: {version.label} serves this store again.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard:models")


# --- Experiments ----------------------------------------------------------------------------

ARM_ROWS = 4  # arm rows offered by the form; blank rows are left out (the service wants 2..10)


def _arm_rows(request: HttpRequest) -> list[dict]:
    """The arm rows as typed (shown again when the form comes back with an error)."""
    return [
        {
            "index": index,
            "name": request.POST.get(f"arm-{index}-name", "").strip(),
            "source": request.POST.get(f"arm-{index}-source", ""),
            "traffic": request.POST.get(f"arm-{index}-traffic", "").strip(),
        }
        for index in range(ARM_ROWS)
    ]


def _arms(rows: list[dict]) -> list[dict]:
    """Arms for experiment_create from the filled rows. A source is `strategy:<name>` or
    `version:<number>`; traffic must be a whole number (the service checks ranges, names and
    the sum). Raises ApplicationError naming the arm."""
    arms: list[dict] = []
    for row in rows:
        if not row["name"] and not row["traffic"]:
            continue
        index = row["index"]
        arm: dict = {"name": row["name"]}
        kind, _, value = row["source"].partition(":")
        if kind == "version" and value.isdigit():
            arm["model_version"] = int(value)
        elif kind == "strategy" and value:
            arm["strategy"] = value
        else:
            raise ApplicationError(
                f"Arm {index + 1}: choose what it serves.",
                fields={"arms": [{"index": index, "source": ["required"]}]},
            )
        try:
            arm["traffic_percent"] = int(row["traffic"])
        except ValueError:
            raise ApplicationError(
                f"Arm {index + 1}: the traffic share must be a whole number of percent.",
                fields={"arms": [{"index": index, "traffic_percent": ["integer"]}]},
            ) from None
        arms.append(arm)
    return arms


def _blank_arm_rows() -> list[dict]:
    rows = [{"index": i, "name": "", "source": "", "traffic": ""} for i in range(ARM_ROWS)]
    rows[0].update(name="control", source="strategy:model", traffic="50")
    rows[1].update(name="variant", source="strategy:trending", traffic="50")
    return rows


def _experiments_context(request: HttpRequest, **extra) -> dict:
    experiments = recommendation_selectors.experiment_list()[:50]
    return {
        "experiments": experiments,
        "running": next((e for e in experiments if e.status == e.Status.RUNNING), None),
        "can_manage": can(request.membership.role, "train_models"),
        "sources": selectors.experiment_version_choices(),
        "arm_rows": extra.pop("arm_rows", None) or _blank_arm_rows(),
        "name": extra.pop("name", ""),
        **extra,
    }


@store_member_required("view")
def experiments(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/experiments.html", _experiments_context(request))


@require_POST
@store_member_required("train_models")
def experiment_create(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("name", "").strip()
    rows = _arm_rows(request)
    try:
        experiment = recommendation_services.experiment_create(
            name=name, arms=_arms(rows), actor_user=request.user, request=request
        )
    except ApplicationError as exc:
        return render(
            request,
            "dashboard/experiments.html",
            _experiments_context(request, name=name, arm_rows=rows, error=exc.message),
            status=exc.status_code,
        )
    messages.success(request, f"Experiment {experiment.name!r} started.")
    return redirect("dashboard:experiment", experiment_id=experiment.pk)


def _experiment_or_404(experiment_id: int):
    try:
        return recommendation_selectors.experiment_get(experiment_id=experiment_id)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc


@store_member_required("view")
def experiment_detail(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = _experiment_or_404(experiment_id)
    return render(
        request,
        "dashboard/experiment_detail.html",
        {
            "experiment": experiment,
            "results": recommendation_selectors.experiment_results(experiment=experiment),
            "can_manage": can(request.membership.role, "train_models"),
        },
    )


@require_POST
@store_member_required("train_models")
def experiment_stop(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = _experiment_or_404(experiment_id)
    try:
        recommendation_services.experiment_stop(
            experiment=experiment, actor_user=request.user, request=request
        )
        messages.success(request, f"Experiment {experiment.name!r} stopped.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard:experiment", experiment_id=experiment.pk)


# --- Team (the page itself is apps.users' /team/) ----------------------------------------------


@require_POST
@store_member_required("manage_members")
def invitation_revoke_view(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = Invitation.objects.filter(pk=invitation_id, tenant_id=request.tenant.pk).first()
    if invitation is None:
        raise Http404("No such invitation.")
    try:
        invitation_revoke(invitation=invitation, actor=request.user, request=request)
        messages.success(request, f"Invitation of {invitation.email} revoked.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("users:team")


# --- Audit log ------------------------------------------------------------------------------


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, label="Actor")
    action = forms.CharField(required=False, label="Action")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))


def _audit_bounds(form: AuditFilterForm) -> tuple[datetime | None, datetime | None]:
    tz = timezone.get_current_timezone()
    since = form.cleaned_data.get("since")
    until = form.cleaned_data.get("until")
    # "To" includes its whole day; up to 9999-12-31 there is no next day: no upper bound then.
    return (
        datetime.combine(since, time.min, tzinfo=tz) if since else None,
        datetime.combine(until + timedelta(days=1), time.min, tzinfo=tz)
        if until and until < date.max
        else None,
    )


@store_member_required("view")
def audit(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    events = audit_event_list()
    if form.is_bound and form.is_valid():
        since, until = _audit_bounds(form)
        events = audit_event_list(since=since, until=until, action=form.cleaned_data["action"])
        if form.cleaned_data["actor"]:
            events = events.filter(actor_label__icontains=form.cleaned_data["actor"])
    status = 400 if form.is_bound and not form.is_valid() else 200
    return render(
        request,
        "dashboard/audit.html",
        {"form": form, "page": _page(request, events.order_by("-occurred_at", "-id"), 50)},
        status=status,
    )


@store_member_required("view")
def audit_export(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    since = until = None
    if form.is_bound:
        if not form.is_valid():
            return HttpResponse("Invalid dates.", status=400, content_type="text/plain")
        since, until = _audit_bounds(form)
    out = io.StringIO()
    audit_export_csv(out=out, since=since, until=until, actor_user=request.user, request=request)
    response = HttpResponse(out.getvalue(), content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = (
        f'attachment; filename="audit-{request.tenant.slug}-{stamp}.csv"'
    )
    return response


# --- Notifications --------------------------------------------------------------------------


@store_member_required("view")
def notifications(request: HttpRequest) -> HttpResponse:
    unread_only = request.GET.get("unread") == "1"
    inbox = notification_selectors.notification_inbox(user=request.user, unread_only=unread_only)
    return render(
        request,
        "dashboard/notifications.html",
        {"page": _page(request, inbox, 50), "unread_only": unread_only},
    )


@require_POST
@store_member_required("view")
def notifications_read(request: HttpRequest) -> HttpResponse:
    raw_ids = request.POST.getlist("id")
    try:
        ids = [int(value) for value in raw_ids] if raw_ids else None
    except ValueError:
        return HttpResponse("Invalid notification id.", status=400, content_type="text/plain")
    changed = notification_services.notification_mark_read(user=request.user, notification_ids=ids)
    messages.success(request, f"Marked {changed} notification{'s' if changed != 1 else ''} read.")
    return redirect("dashboard:notifications")


# --- Settings -------------------------------------------------------------------------------


class StoreNameForm(forms.Form):
    name = forms.CharField(max_length=120, label="Store name")


class StoreCurrencyForm(forms.Form):
    currency = forms.CharField(
        max_length=3, label="Currency", help_text="ISO 4217 code of attributed revenue."
    )


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
        "webhook_form": extra.pop("webhook_form", None) or WebhookForm(),
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
                actor=request.user,
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
                actor=request.user,
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
def webhook_create(request: HttpRequest) -> HttpResponse:
    form = WebhookForm(request.POST)
    if form.is_valid():
        try:
            endpoint, secret = notification_services.webhook_endpoint_create(
                url=form.cleaned_data["url"],
                kinds=form.cleaned_data["kinds"],
                endpoint_format=form.cleaned_data["endpoint_format"],
                description=form.cleaned_data["description"],
                actor=request.user,
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
        endpoint=endpoint, actor=request.user, request=request
    )
    messages.success(request, f"Webhook {endpoint.url} deleted.")
    return redirect("dashboard:settings")


@require_POST
@store_member_required("manage_members")
def webhook_rotate(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint_or_404(endpoint_id)
    secret = notification_services.webhook_endpoint_rotate_secret(
        endpoint=endpoint, actor=request.user, request=request
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
            delivery=delivery, actor=request.user, request=request
        )
        messages.success(request, f"Delivery {delivery.pk} queued to be sent again.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard:settings")
