"""WSGI entry point (HTTP only; config.asgi also serves websockets)."""

import os

# BLAS sizes its thread pool when numpy/scipy first load: one thread per process, as implicit
# advises (its ALS parallelises with OpenMP instead, which stays free to use every core), so
# web and worker processes don't oversubscribe the cores. Before any other import, so nothing
# can load numpy first; setdefault keeps an operator's explicit value.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# This process serves HTTP (granian, deploy/web.sh): settings give it a bounded database
# connection pool sized by DB_POOL_SIZE_WEB (config/settings/base.py).
# Assigned, not defaulted: a parent process's role must not leak into this one.
os.environ["SHELFSENSE_PROCESS"] = "web"

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from apps.core.wsgi import keep_path_bytes, read_chunked_body
from config.local_services import local_services_use

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
local_services_use()  # the embedded servers of `make run` when DATABASE_URL/REDIS_URL are unset
django_application = get_wsgi_application()

from apps.recommendations.express import express_lane  # noqa: E402  (needs django.setup())

# Keeps the path's bytes so a path that is not UTF-8 is refused, not read as another id, and
# reads a chunked body (no Content-Length) that Django would take for an empty one.
application = keep_path_bytes(
    read_chunked_body(
        express_lane(django_application),
        body_limit=lambda: settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
    )
)
