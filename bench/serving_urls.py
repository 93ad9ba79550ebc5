"""The store URLs plus a bare Django JSON view under /api/, for bench/serving.py: the floor the
recommendation endpoint is measured against (same host, middleware stack and server; the view
itself does nothing)."""

from django.http import JsonResponse
from django.urls import path

from config.urls_tenant import urlpatterns as store_urlpatterns

BARE_PATH = "api/bench/bare"


def bare_json(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [path(BARE_PATH, bare_json), *store_urlpatterns]
