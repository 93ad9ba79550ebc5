"""Membership is checked on every store request: this is what keeps stores apart for people.

On a store host, a signed-in user who is not a member of that store is refused (403), pages
of an anonymous visitor send them to sign in on the public site, and API paths see a
non-member's session as no session at all (API keys authenticate separately, inside the
store's schema). Sets request.membership for members.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from apps.core.errors import json_error_response
from apps.core.middleware import API_PREFIX
from apps.core.negotiation import wants_json
from apps.tenants.selectors import public_url
from apps.users.permissions import request_membership, store_signin_url

# Paths a store host serves without a member's session: the API (its own authentication),
# static files, the browser SDK, and the session hand-off/logout endpoints.
OPEN_PREFIXES = ("/static/", "/media/", "/sdk/", "/accounts/handoff/", "/accounts/logout/")


class StoreMembershipMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant = getattr(request, "tenant", None)
        path = request.path_info
        if tenant is None or tenant.is_public or path.startswith(OPEN_PREFIXES):
            return self.get_response(request)
        authenticated = request.user.is_authenticated
        membership = request_membership(request) if authenticated else None
        if path.startswith(API_PREFIX):
            if authenticated and membership is None:
                request.user = AnonymousUser()
            elif membership is not None:
                request.membership = membership
            return self.get_response(request)
        if not authenticated:
            if wants_json(request):
                return json_error_response("not_authenticated", "Sign in to use this store.", 401)
            return HttpResponseRedirect(store_signin_url(request))
        if membership is None:
            message = "You are not a member of this store."
            if wants_json(request):
                return json_error_response("not_a_member", message, 403)
            return render(
                request,
                "users/forbidden.html",
                {"message": message, "stores_url": public_url("/stores/")},
                status=403,
            )
        request.membership = membership
        return self.get_response(request)
