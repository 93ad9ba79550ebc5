"""The one permission matrix of a store, enforced on pages, the API and websockets.

| action            | owner | admin | developer | analyst |
| view              | yes   | yes   | yes       | yes     |  dashboard, reports, catalog, audit log
| manage_api_keys   | yes   | yes   | yes       | no      |
| train_models      | yes   | yes   | yes       | no      |  train / activate models, experiments
| manage_members    | yes   | yes   | no        | no      |
| manage_billing    | yes   | no    | no        | no      |  billing, delete store

Pages: `@store_member_required("manage_members")` (login, membership of request.tenant, role;
sets request.membership). DRF: `permission_classes = [StoreMemberPermission("train_models")]`
with session authentication. Websockets/other code: `can(role, action)` on the role from
`apps.users.selectors.membership_role`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from apps.core.errors import json_error_response
from apps.core.negotiation import wants_json
from apps.tenants.selectors import public_url
from apps.users.models import Membership

OWNER, ADMIN, DEVELOPER, ANALYST = (
    Membership.Role.OWNER,
    Membership.Role.ADMIN,
    Membership.Role.DEVELOPER,
    Membership.Role.ANALYST,
)

MATRIX: dict[str, frozenset[str]] = {
    "view": frozenset({OWNER, ADMIN, DEVELOPER, ANALYST}),
    "manage_api_keys": frozenset({OWNER, ADMIN, DEVELOPER}),
    "train_models": frozenset({OWNER, ADMIN, DEVELOPER}),
    "manage_members": frozenset({OWNER, ADMIN}),
    "manage_billing": frozenset({OWNER}),
}
ACTIONS = tuple(MATRIX)


def can(role: str | None, action: str) -> bool:
    """Whether `role` may do `action`. An unknown action is a programming error."""
    if action not in MATRIX:
        raise ValueError(f"Unknown permission action {action!r}; one of {ACTIONS}.")
    return role is not None and role in MATRIX[action]


def store_signin_url(request: HttpRequest) -> str:
    """Sign-in happens on the public site, which then hands the session to this store."""
    slug = request.tenant.slug
    return public_url(f"/stores/{slug}/go/?" + urlencode({"next": request.get_full_path()}))


def request_membership(request: HttpRequest) -> Membership | None:
    """The signed-in user's membership of the request's store (cached on the request)."""
    if hasattr(request, "_store_membership"):
        return request._store_membership
    membership = None
    user = getattr(request, "user", None)
    tenant = getattr(request, "tenant", None)
    if user is not None and user.is_authenticated and tenant is not None and not tenant.is_public:
        membership = (
            Membership.objects.select_related("tenant")
            .filter(user_id=user.pk, tenant_id=tenant.pk)
            .first()
        )
    request._store_membership = membership
    return membership


def _denied(request: HttpRequest, message: str, status: int, code: str) -> HttpResponse:
    if wants_json(request):
        return json_error_response(code, message, status)
    return render(request, "users/forbidden.html", {"message": message}, status=status)


def store_member_required(action: str = "view") -> Callable:
    """Page decorator: signed in (else redirect to login), a member of this store (else 403)
    and allowed `action` by the matrix (else 403). Sets request.membership."""
    if action not in MATRIX:
        raise ValueError(f"Unknown permission action {action!r}; one of {ACTIONS}.")

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                if wants_json(request):
                    return json_error_response(
                        "not_authenticated", "Sign in to use this store.", 401
                    )
                tenant = getattr(request, "tenant", None)
                if tenant is not None and not tenant.is_public:
                    return HttpResponseRedirect(store_signin_url(request))
                return redirect_to_login(request.get_full_path())
            membership = request_membership(request)
            if membership is None:
                return _denied(request, "You are not a member of this store.", 403, "not_a_member")
            if not can(membership.role, action):
                return _denied(
                    request,
                    f"Your role ({membership.role}) does not allow this.",
                    403,
                    "permission_denied",
                )
            request.membership = membership
            return view(request, *args, **kwargs)

        wrapped.required_action = action  # type: ignore[attr-defined]
        return wrapped

    return decorator


def StoreMemberPermission(action: str = "view") -> type[BasePermission]:
    """DRF permission: the session user is a member of request.tenant whose role allows
    `action`. Anonymous → 401/403 by DRF; non-member → 403 `not_a_member`; role too low → 403
    `permission_denied`. Sets request.membership."""
    if action not in MATRIX:
        raise ValueError(f"Unknown permission action {action!r}; one of {ACTIONS}.")

    class _StoreMemberPermission(BasePermission):
        def has_permission(self, request, view) -> bool:
            if request.user is None or not request.user.is_authenticated:
                return False
            membership = request_membership(request._request)
            if membership is None:
                raise exceptions.PermissionDenied(
                    "You are not a member of this store.", code="not_a_member"
                )
            if not can(membership.role, action):
                raise exceptions.PermissionDenied(
                    f"Your role ({membership.role}) does not allow this.", code="permission_denied"
                )
            request.membership = membership
            return True

    _StoreMemberPermission.__name__ = f"StoreMemberPermission({action})"
    return _StoreMemberPermission
