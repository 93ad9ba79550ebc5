"""The placements pages (`/placements/`): list, create, edit and delete a store's placements
(name, scenario, rules as JSON), and preview one: pick a placement and a shopper, session or
item and see the list with titles and reasons exactly as the API would serve it with
`explain=true` (never logged as an impression, rotation state untouched)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.catalog.models import Item
from apps.core.errors import ApplicationError
from apps.core.parsers import JsonRefused, json_parse
from apps.merchandising import placing, selectors, services
from apps.merchandising.explain import reason_text
from apps.merchandising.models import Placement
from apps.users.permissions import can, store_member_required

PREVIEW_K = 10
RULES_EXAMPLE = {
    "filters": {"categories": ["shoes"], "price_max": 120},
    "boosts": [{"when": {"attributes": {"on_sale": True}}, "weight": 1.5, "name": "sale"}],
    "pins": [{"item_id": "sku-1", "position": 1}],
    "diversity": {"max_per_category": 3},
    "rotation": {"window_seconds": 3600},
}


def _rules_from(text: str) -> object:
    """The rules JSON typed in the form. Raises ApplicationError naming `rules`."""
    if not text.strip():
        return {}
    try:
        return json_parse(text)
    except JsonRefused as exc:
        raise ApplicationError(
            f"Rules: not valid JSON ({exc.reason}).", fields={"rules": [exc.problem]}
        ) from None


def _error_text(exc: ApplicationError) -> str:
    fields = "; ".join(
        f"{name}: {' '.join(str(m) for m in messages_)}" for name, messages_ in exc.fields.items()
    )
    return fields or exc.message


def _page(request: HttpRequest, status: int = 200, **extra) -> HttpResponse:
    placements = list(selectors.placement_list())
    context = {
        "placements": [
            {"placement": p, "rules_json": json.dumps(p.rules, sort_keys=True)} for p in placements
        ],
        "scenarios": Placement.Scenario.choices,
        "can_manage": can(request.membership.role, "train_models"),
        "rules_example": json.dumps(RULES_EXAMPLE, indent=2),
        "form": {"name": "", "scenario": "personal", "rules": ""},
        **extra,
    }
    return render(request, "dashboard/placements.html", context, status=status)


@store_member_required("view")
def placements(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_POST
@store_member_required("train_models")
def placement_create(request: HttpRequest) -> HttpResponse:
    form = {key: request.POST.get(key, "") for key in ("name", "scenario", "rules")}
    try:
        placement = services.placement_create(
            name=form["name"].strip(),
            scenario=form["scenario"],
            rules=_rules_from(form["rules"]),
            acting_user=request.user,
            request=request,
        )
    except ApplicationError as exc:
        return _page(request, status=exc.status_code, form=form, error=_error_text(exc))
    messages.success(request, f"Placement {placement.name!r} created.")
    return redirect("dashboard:placements")


def _placement_or_404(name: str) -> Placement:
    try:
        return selectors.placement_get(name=name)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc


@store_member_required("view")
def placement_edit(request: HttpRequest, name: str) -> HttpResponse:
    placement = _placement_or_404(name)
    form = {"scenario": placement.scenario, "rules": json.dumps(placement.rules, indent=2)}
    status, error = 200, None
    if request.method == "POST":
        if not can(request.membership.role, "train_models"):
            return HttpResponse("Your role cannot change placements.", status=403)
        form = {key: request.POST.get(key, "") for key in ("scenario", "rules")}
        try:
            services.placement_update(
                name=placement.name,
                scenario=form["scenario"],
                rules=_rules_from(form["rules"]),
                acting_user=request.user,
                request=request,
            )
        except ApplicationError as exc:
            status, error = exc.status_code, _error_text(exc)
        else:
            messages.success(request, f"Placement {placement.name!r} saved.")
            return redirect("dashboard:placements")
    return render(
        request,
        "dashboard/placement_edit.html",
        {
            "placement": placement,
            "form": form,
            "error": error,
            "scenarios": Placement.Scenario.choices,
            "can_manage": can(request.membership.role, "train_models"),
        },
        status=status,
    )


@require_POST
@store_member_required("train_models")
def placement_delete(request: HttpRequest, name: str) -> HttpResponse:
    placement = _placement_or_404(name)
    services.placement_delete(name=placement.name, acting_user=request.user, request=request)
    messages.success(request, f"Placement {placement.name!r} deleted.")
    return redirect("dashboard:placements")


def with_titles(items: list[dict]) -> list[dict]:
    """API list rows with each item's title and its reason in words."""
    titles = dict(
        Item.objects.filter(item_id__in=[row["item_id"] for row in items]).values_list(
            "item_id", "title"
        )
    )
    return [
        {
            **row,
            "title": titles.get(row["item_id"], ""),
            "reason_text": reason_text(row.get("reason")),
        }
        for row in items
    ]


@store_member_required("view")
def placement_preview(request: HttpRequest) -> HttpResponse:
    name = request.GET.get("placement", "")
    subject = request.GET.get("subject", "").strip()
    result, error = None, None
    if name:
        try:
            placement = selectors.placement_get(name=name)
            body = placing.explained_list(
                scenario=placement.scenario, subject=subject, placement=name, k=PREVIEW_K
            )
            result = {"body": body, "items": with_titles(body["items"]), "placement": placement}
        except ApplicationError as exc:
            error = _error_text(exc)
    return _page(
        request,
        status=200,
        preview=result,
        preview_error=error,
        preview_name=name,
        preview_subject=subject,
        subject_fields=placing.SUBJECT_FIELD,
    )
