"""The notifications page (`/notifications/`): the member's inbox and marking it read."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.dashboard.views.common import paginate
from apps.notifications import selectors as notification_selectors
from apps.notifications import services as notification_services
from apps.users.permissions import store_member_required


@store_member_required("view")
def notifications(request: HttpRequest) -> HttpResponse:
    unread_only = request.GET.get("unread") == "1"
    inbox = notification_selectors.notification_inbox(user=request.user, unread_only=unread_only)
    return render(
        request,
        "dashboard/notifications.html",
        {"page": paginate(request, inbox, 50), "unread_only": unread_only},
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
