"""Probes and metrics answer on any host, before tenant resolution: load balancers and
Prometheus reach pods by IP, not by a store's domain."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_prometheus.exports import ExportToDjangoView

from apps.core import health
from apps.core.errors import error_body


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
        return ExportToDjangoView(request)


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
