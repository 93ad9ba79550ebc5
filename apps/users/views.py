"""Pages of accounts: the public site's store list, store hand-off and invitations; the store
host's session hand-off, logout and team page."""

from __future__ import annotations

from allauth.account.views import LoginView as AllauthLoginView
from allauth.account.views import SignupView as AllauthSignupView
from django.contrib import messages
from django.contrib.auth import BACKEND_SESSION_KEY, login, logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.billing.entitlements import plan_limit_offer
from apps.core.errors import ApplicationError
from apps.tenants.selectors import public_url
from apps.users.forms import InviteForm, RoleForm
from apps.users.handoff import handoff_consume, handoff_url
from apps.users.models import Membership
from apps.users.permissions import can, store_member_required
from apps.users.selectors import (
    store_members,
    store_pending_invitations,
    store_seats_taken,
    user_memberships,
)
from apps.users.services import (
    invitation_accept,
    invitation_decline,
    invitation_from_token,
    membership_change_role,
    membership_invite,
    membership_remove,
    membership_transfer_ownership,
)


def _error_page(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    return render(request, "users/forbidden.html", {"message": exc.message}, status=exc.status_code)


# --- public site --------------------------------------------------------------------------------


class SignupView(AllauthSignupView):
    """allauth's signup; a store that cannot be created (its address taken in a race) comes
    back as a form error, with the account rolled back with it."""

    def form_valid(self, form):
        try:
            return super().form_valid(form)
        except ApplicationError as exc:
            form.add_error("store_slug" if "slug" in exc.fields else None, exc.message)
            return self.form_invalid(form)


signup = SignupView.as_view()


@login_required
def store_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "users/store_list.html", {"memberships": user_memberships(user=request.user)}
    )


@login_required
def store_go(request: HttpRequest, slug: str) -> HttpResponse:
    """Open one of the user's stores: a hand-off link signs them in on the store's host."""
    membership = user_memberships(user=request.user).filter(tenant__slug=slug).first()
    if membership is None:
        raise Http404("You are not a member of this store.")
    next_path = request.GET.get("next", "/")
    return HttpResponseRedirect(
        handoff_url(user=request.user, tenant=membership.tenant, next_path=next_path)
    )


def invitation_detail(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation = invitation_from_token(token)
    except ApplicationError as exc:
        return _error_page(request, exc)
    if request.method == "POST":
        try:
            if request.POST.get("decision") == "decline":
                invitation_decline(
                    invitation=invitation,
                    acting_user=request.user if request.user.is_authenticated else None,
                    request=request,
                )
                messages.info(request, f"You declined the invitation to {invitation.tenant.name}.")
                return redirect("platform-home")
            if not request.user.is_authenticated:
                return redirect(f"{public_url('/accounts/login/')}?next={request.path}")
            invitation_accept(invitation=invitation, acting_user=request.user, request=request)
        except ApplicationError as exc:
            return _error_page(request, exc)
        return HttpResponseRedirect(handoff_url(user=request.user, tenant=invitation.tenant))
    return render(request, "users/invitation.html", {"invitation": invitation})


# --- store host ---------------------------------------------------------------------------------


def store_handoff(request: HttpRequest) -> HttpResponse:
    """Start this store host's session from a one-time link made by the public site."""
    try:
        user = handoff_consume(token=request.GET.get("token", ""), tenant=request.tenant)
    except ApplicationError as exc:
        return _error_page(request, exc)
    if not Membership.objects.filter(user_id=user.pk, tenant_id=request.tenant.pk).exists():
        return _error_page(
            request, ApplicationError("You are not a member of this store.", status_code=403)
        )
    if not request.user.is_authenticated or request.user.pk != user.pk:
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    next_path = request.GET.get("next", "/")
    if not next_path.startswith("/") or next_path.startswith("//"):
        next_path = "/"
    return HttpResponseRedirect(next_path)


@require_POST
def store_logout(request: HttpRequest) -> HttpResponse:
    """Ends this host's session, then the public site's (allauth asks to confirm there)."""
    if BACKEND_SESSION_KEY in request.session or request.user.is_authenticated:
        logout(request)
    return HttpResponseRedirect(public_url("/accounts/logout/"))


def _team_context(request: HttpRequest, **extra) -> dict:
    role = request.membership.role
    return {
        "members": store_members(tenant=request.tenant),
        "invitations": store_pending_invitations(tenant=request.tenant),
        "can_manage": can(role, "manage_members"),
        "is_owner": role == Membership.Role.OWNER,
        "invite_form": InviteForm(),
        "seats_refusal": plan_limit_offer(
            tenant=request.tenant,
            limit="team_seats",
            in_use=store_seats_taken(tenant=request.tenant),
        ),
        "roles": Membership.Role.choices,
        **extra,
    }


@store_member_required("view")
def team(request: HttpRequest) -> HttpResponse:
    return render(request, "users/team.html", _team_context(request))


@require_POST
@store_member_required("manage_members")
def team_invite(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST)
    if not form.is_valid():
        return render(
            request, "users/team.html", _team_context(request, invite_form=form), status=400
        )
    try:
        membership_invite(
            tenant=request.tenant,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            acting_user=request.user,
            request=request,
        )
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return render(
            request,
            "users/team.html",
            _team_context(request, invite_form=form),
            status=exc.status_code,
        )
    messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
    return redirect("users:team")


def _member(request: HttpRequest, membership_id: int) -> Membership:
    membership = Membership.objects.filter(pk=membership_id, tenant_id=request.tenant.pk).first()
    if membership is None:
        raise Http404("No such member.")
    return membership


def _run(request: HttpRequest, action, success: str) -> HttpResponse:
    try:
        action()
    except ApplicationError as exc:
        messages.error(request, exc.message)
        response = render(
            request, "users/team.html", _team_context(request), status=exc.status_code
        )
        return response
    messages.success(request, success)
    return redirect("users:team")


@require_POST
@store_member_required("manage_members")
def team_change_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = _member(request, membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
        return render(request, "users/team.html", _team_context(request), status=400)
    role = form.cleaned_data["role"]
    return _run(
        request,
        lambda: membership_change_role(
            membership=membership, role=role, acting_user=request.user, request=request
        ),
        f"{membership.user.email} is now {role}.",
    )


@require_POST
@store_member_required("manage_members")
def team_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = _member(request, membership_id)
    return _run(
        request,
        lambda: membership_remove(membership=membership, acting_user=request.user, request=request),
        f"Removed {membership.user.email}.",
    )


@require_POST
@store_member_required("manage_billing")
def team_transfer(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = _member(request, membership_id)
    return _run(
        request,
        lambda: membership_transfer_ownership(
            tenant=request.tenant,
            to_membership=membership,
            acting_user=request.user,
            request=request,
        ),
        f"{membership.user.email} now owns this store.",
    )


@require_POST
@store_member_required("view")
def team_leave(request: HttpRequest) -> HttpResponse:
    try:
        membership_remove(membership=request.membership, acting_user=request.user, request=request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return render(request, "users/team.html", _team_context(request), status=exc.status_code)
    logout(request)
    return HttpResponseRedirect(public_url("/stores/"))


class LoginView(AllauthLoginView):
    """allauth's login; a locked account (too many failed attempts) answers 429 with
    Retry-After, keeping allauth's form and its message, instead of 200."""

    def form_invalid(self, form) -> HttpResponse:
        response = super().form_invalid(form)
        retry_after = getattr(self.request, "login_retry_after", None)
        if retry_after is not None:
            response.status_code = 429
            response["Retry-After"] = str(retry_after)
        return response
