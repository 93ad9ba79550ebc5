"""Counts every /api/ request of a store for usage anomaly detection (in memory; a thread per
process writes the counts to Redis every second, see apps.notifications.anomaly)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.notifications.anomaly import api_request_count


class ApiUsageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None and not tenant.is_public and request.path_info.startswith("/api/"):
            api_request_count(response.status_code, schema_name=tenant.schema_name)
        return response
