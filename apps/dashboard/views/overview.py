"""The overview page (`/`): today's events by type (updated live), the recommendation funnel over
7 and 30 days, the active model against its baseline, charts and recent usage anomalies."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from apps.catalog.models import Event
from apps.catalog.selectors import event_counters
from apps.dashboard import selectors
from apps.users.permissions import can, store_member_required


@store_member_required("view")
def overview(request: HttpRequest) -> HttpResponse:
    counters = event_counters()
    onboarding = selectors.onboarding_steps()
    context = {
        "onboarding": onboarding if not all(step["done"] for step in onboarding) else None,
        "base_url": request.build_absolute_uri("/").rstrip("/"),
        "now_iso": timezone.now().replace(microsecond=0).isoformat(),
        "can_manage_keys": can(request.membership.role, "manage_api_keys"),
        "events_today": [
            (code, label, counters.get(code, 0)) for code, label in Event.Type.choices
        ],
        "events_chart": selectors.events_per_day(),
        "anomalies": selectors.recent_anomalies(),
        "snapshot": selectors.store_snapshot(),
        "recommendations_ready": selectors.recommendations_ready(),
    }
    if context["recommendations_ready"]:
        funnels = selectors.overview_funnels(currency=request.tenant.currency)
        funnel_30 = funnels[30]
        context.update(
            funnel_7=funnels[7],
            funnel_30=funnel_30,
            ctr_chart=selectors.ctr_chart(summary=funnel_30),
            **selectors.model_summary(),
        )
    return render(request, "dashboard/overview.html", context)
