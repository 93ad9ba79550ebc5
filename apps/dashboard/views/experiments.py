"""The experiments pages (`/experiments/`): list, start one from the arms form (2 to 4 arms with
whole-number traffic shares), per-experiment results, stop."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.billing.entitlements import plan_feature_offer
from apps.core.errors import ApplicationError
from apps.dashboard import selectors
from apps.recommendations import selectors as recommendation_selectors
from apps.recommendations import services as recommendation_services
from apps.users.permissions import can, store_member_required

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
        "plan_refusal": plan_feature_offer(tenant=request.tenant, feature="ab_tests"),
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
            name=name, arms=_arms(rows), acting_user=request.user, request=request
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
            experiment=experiment, acting_user=request.user, request=request
        )
        messages.success(request, f"Experiment {experiment.name!r} stopped.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard:experiment", experiment_id=experiment.pk)
