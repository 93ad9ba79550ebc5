"""Last-resort error responses, in the one error format for API clients."""

from __future__ import annotations

import sys

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views import defaults

from apps.core.errors import error_body
from apps.core.negotiation import wants_json

# Raised when PostgreSQL is unreachable or out of connections: transient, so clients should
# retry (503), not report a bug (500).
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: API clients get the JSON error body, people Django's page."""
    if wants_json(request):
        return JsonResponse(
            error_body("not_found", f"Nothing is served at {request.path}."), status=404
        )
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500. Django calls it while the exception is being handled, so sys.exc_info()
    still names it."""
    exc = sys.exc_info()[1]
    if isinstance(exc, UNAVAILABLE_ERRORS) or (
        isinstance(exc, DatabaseError) and "too many clients" in str(exc)
    ):
        status, code, message = (
            503,
            "service_unavailable",
            "The service is temporarily unavailable; retry shortly.",
        )
    else:
        status, code, message = 500, "server_error", "Something went wrong on our side."
    if wants_json(request):
        response = JsonResponse(error_body(code, message), status=status)
    else:
        response = render(request, "core/error.html", {"message": message}, status=status)
    if status == 503:
        response["Retry-After"] = "5"
    return response


def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for on pages that name no icon (the admin's)."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))
