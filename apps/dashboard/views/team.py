"""Team actions served by the dashboard: revoking an invitation. The team page itself is
apps.users' `/team/`, rendered inside the dashboard layout."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError
from apps.users.models import Invitation
from apps.users.permissions import store_member_required
from apps.users.services import invitation_revoke


@require_POST
@store_member_required("manage_members")
def invitation_revoke_view(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = Invitation.objects.filter(pk=invitation_id, tenant_id=request.tenant.pk).first()
    if invitation is None:
        raise Http404("No such invitation.")
    try:
        invitation_revoke(invitation=invitation, acting_user=request.user, request=request)
        messages.success(request, f"Invitation of {invitation.email} revoked.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("users:team")
