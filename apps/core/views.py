"""Last-resort error responses, in the one error format for API clients."""

from __future__ import annotations

import sys

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import is_valid_path
from django.views import defaults

from apps.core.errors import error_body
from apps.core.negotiation import wants_json

# Raised when PostgreSQL is unreachable or out of connections: transient, so clients should
# retry (503), not report a bug (500).
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: API clients get the JSON error body, people Django's page. A path served
    with a trailing slash that came without one (a write: apps.core.middleware.CommonMiddleware
    does not redirect it) is named in the message."""
    if wants_json(request):
        message = f"Nothing is served at {request.path}."
        if _served_with_slash(request):
            message = (
                f"Nothing is served at {request.path}; did you mean {request.path}/ "
                "(with the trailing slash)?"
            )
        return JsonResponse(error_body("not_found", message), status=404)
    return defaults.page_not_found(request, exception)


def _served_with_slash(request: HttpRequest) -> bool:
    path = request.path_info
    if path.endswith("/"):
        return False
    urlconf = getattr(request, "urlconf", None)
    return not is_valid_path(path, urlconf) and bool(is_valid_path(f"{path}/", urlconf))


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
