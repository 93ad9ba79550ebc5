"""Probes and metrics answer on any host, before tenant resolution: load balancers and
Prometheus reach pods by IP, not by a store's domain."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware import common as common_middleware
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import generate_latest

from apps.core import health
from apps.core.errors import error_body
from apps.core.negotiation import wants_json
from apps.core.platform_metrics import PLATFORM_REGISTRY
from apps.core.views import not_found
from apps.core.wsgi import PATH_BYTES_KEY


class ProbeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path == "/healthz":
            return JsonResponse({"status": "ok"})
        if path == "/readyz":
            failures = health.readiness_failures()
            if failures:
                return JsonResponse({"status": "unavailable", "failed": failures}, status=503)
            return JsonResponse({"status": "ok"})
        if path == "/metrics":
            return self._metrics(request)
        return self.get_response(request)

    def _metrics(self, request: HttpRequest) -> HttpResponse:
        token = settings.METRICS_TOKEN
        if not token:
            return JsonResponse(
                error_body("metrics_disabled", "Metrics are off: set METRICS_TOKEN to enable."),
                status=404,
            )
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(supplied.encode(), token.encode()):
            return JsonResponse(
                error_body("not_authenticated", "A valid metrics bearer token is required."),
                status=401,
            )
        response = ExportToDjangoView(request)
        # Queue lengths, Redis/PostgreSQL health and the workers' failure counters.
        response.content += generate_latest(PLATFORM_REGISTRY)
        return response


# --- cookieless API calls ----------------------------------------------------------------------
# An integration calls /api/ with an API key and no cookies: no session, signed-in user or
# flash message can apply to it, yet loading them cost about as much as serving a cached
# recommendation list. These subclasses step aside for such requests and act as usual for
# everything else (pages, and API calls that carry a session cookie). They stay subclasses of
# Django's own so the framework's checks still recognise them.
API_PREFIX = "/api/"


def is_cookieless_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX) and not request.META.get("HTTP_COOKIE")


class SessionMiddleware(sessions_middleware.SessionMiddleware):
    def __call__(self, request: HttpRequest):
        if is_cookieless_api_request(request):
            return self.get_response(request)
        return super().__call__(request)


class AuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    def __call__(self, request: HttpRequest):
        if is_cookieless_api_request(request):
            request.user = AnonymousUser()
            return self.get_response(request)
        return super().__call__(request)


class MessageMiddleware(messages_middleware.MessageMiddleware):
    def __call__(self, request: HttpRequest):
        if is_cookieless_api_request(request):
            return self.get_response(request)
        return super().__call__(request)


# --- input no view can act on -------------------------------------------------------------------
NUL_MESSAGE = "Must not contain NUL characters."
UTF8_MESSAGE = "Must be valid UTF-8 (percent-encode the UTF-8 bytes of the id)."


def _raw_path_is_utf8(request: HttpRequest) -> bool:
    """Django re-percent-encodes bytes of the path that are not UTF-8 ("a\\xffb" becomes
    "a%FFb"), which would map them onto the id "a%FFb": look at the path as received."""
    scope = getattr(request, "scope", None)
    if scope is not None:  # ASGI: the raw, still percent-encoded path
        raw = scope.get("raw_path")
        # Unquoted as bytes: a str would be re-encoded as UTF-8, turning a raw byte that is
        # not UTF-8 (b"a\xffb", which servers may pass through unencoded) into valid UTF-8.
        data = unquote_to_bytes(raw) if raw else b""
    else:  # WSGI: kept by apps.core.wsgi, the decoded bytes as latin-1 text (PEP 3333)
        path = request.META.get(PATH_BYTES_KEY, "")
        if path.isascii():
            return True
        try:
            data = path.encode("latin-1")
        except UnicodeEncodeError:
            return True  # already text: nothing was re-encoded
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _path_field(request: HttpRequest, bad: str | None) -> str:
    """The URL parameter holding the bad input, else "path"."""
    try:
        match = resolve(request.path_info, urlconf=getattr(request, "urlconf", None))
    except Resolver404:
        return "path"
    names = [
        name
        for name, value in match.kwargs.items()
        if isinstance(value, str) and (bad is None or bad in value)
    ]
    return names[0] if len(names) == 1 else "path"


def request_input_problem(request: HttpRequest) -> tuple[str, str] | None:
    """(field, message) when the path is not UTF-8 or the path or query holds a NUL
    character (PostgreSQL text cannot hold one, so no id or filter can), else None."""
    if not _raw_path_is_utf8(request):
        return _path_field(request, None), UTF8_MESSAGE
    if "\x00" in request.path_info:
        return _path_field(request, "\x00"), NUL_MESSAGE
    query = request.META.get("QUERY_STRING", "")
    if "%00" in query or "\x00" in query:
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                return name.replace("\x00", "") or "query", NUL_MESSAGE
    return None


class RequestInputMiddleware:
    """Answers 400 naming the field for a path that is not UTF-8 or a NUL character in the
    path or query, before any view: JSON for API clients, the error page for people."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Fast path, nearly every request: an ASCII path (so UTF-8) as the WSGI server
        # received it, without NUL, and a query that cannot hold one.
        meta = request.META
        path = meta.get(PATH_BYTES_KEY)
        if path is not None and path.isascii() and "\x00" not in path:
            query = meta.get("QUERY_STRING", "")
            if "%00" not in query and "\x00" not in query:
                return self.get_response(request)
        problem = request_input_problem(request)
        if problem is None:
            return self.get_response(request)
        field, message = problem
        if wants_json(request):
            body = error_body("invalid", f"Invalid input in: {field}.", {field: [message]})
            return JsonResponse(body, status=400)
        return render(request, "core/error.html", {"message": f"{field}: {message}"}, status=400)


# --- /api/ answers in the JSON error body ------------------------------------------------------
# Methods whose request Django's slash-appending redirect may serve: a redirected write loses
# its body (and with DEBUG on, Django raises RuntimeError instead: a 500).
REDIRECTABLE_METHODS = frozenset({"GET", "HEAD"})


class CommonMiddleware(common_middleware.CommonMiddleware):
    """Django's, except that a write to an /api/ path missing its trailing slash is not
    redirected: it stays the 404 it is, whose JSON body (apps.core.views.not_found) names the
    path with the slash. GET and HEAD are still redirected (nothing is lost)."""

    def should_redirect_with_slash(self, request: HttpRequest) -> bool:
        if request.method not in REDIRECTABLE_METHODS and request.path_info.startswith(API_PREFIX):
            return False
        return super().should_redirect_with_slash(request)


class ApiNotFoundMiddleware:
    """An /api/ 404 or 405 that is not already JSON becomes the JSON error body: Django's
    technical 404 page with DEBUG on (`make run`, where handler404 is not called), and the
    empty HTML 405 of plain views' `require_POST` (the Allow header kept). Outside
    CommonMiddleware, so its slash-appending redirect still comes first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code in (404, 405)
            and wants_json(request)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            if response.status_code == 404:
                return not_found(request, Http404())
            allowed = JsonResponse(
                error_body("method_not_allowed", f'Method "{request.method}" not allowed.'),
                status=405,
            )
            if response.has_header("Allow"):
                allowed["Allow"] = response["Allow"]
            return allowed
        return response
