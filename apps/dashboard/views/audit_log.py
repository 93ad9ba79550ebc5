"""The audit log page (`/audit/`): the store's trail filtered by actor, action and dates, and its
CSV export; the filter form lives here."""

from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from apps.audit.selectors import audit_event_list
from apps.audit.services import audit_export_csv
from apps.dashboard.views.common import paginate
from apps.users.permissions import store_member_required


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
        {"form": form, "page": paginate(request, events.order_by("-occurred_at", "-id"), 50)},
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
    audit_export_csv(out=out, since=since, until=until, acting_user=request.user, request=request)
    response = HttpResponse(out.getvalue(), content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = (
        f'attachment; filename="audit-{request.tenant.slug}-{stamp}.csv"'
    )
    return response
