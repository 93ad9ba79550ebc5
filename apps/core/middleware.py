"""Probes and metrics answer on any host, before tenant resolution: load balancers and
Prometheus reach pods by IP, not by a store's domain."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from django.conf import settings
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
