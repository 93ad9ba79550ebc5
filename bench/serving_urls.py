"""The store URLs plus two floors under /api/ for bench/serving.py, on the same host, middleware
stack and server as the recommendation endpoint, each taking a shopper id in its path like it:

- `api/bench/bare/<id>`: a view that only returns JSON; the ratio target is taken against it.
- `api/bench/bare-redis/<id>`: the same plus one MGET of three keys (one of them per shopper)
  through the request path's Redis client: the round trip every cached recommendation needs,
  and nothing else.
"""

from django.db import connection
from django.http import JsonResponse
from django.urls import path

from apps.core.cache import tenant_key
from apps.core.redis_batch import execute_commands
from config.urls_tenant import urlpatterns as store_urlpatterns


def bare_json(request, user_id: str):
    return JsonResponse({"status": "ok"})


def bare_redis_json(request, user_id: str):
    schema = connection.schema_name
    keys = [tenant_key("bench", name, schema_name=schema) for name in ("a", "b", user_id)]
    execute_commands([("MGET", *keys)])
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("api/bench/bare/<str:user_id>", bare_json),
    path("api/bench/bare-redis/<str:user_id>", bare_redis_json),
    *store_urlpatterns,
]
