"""ASGI entry point: HTTP through Django, websockets through Channels with tenant resolution."""

import os

# BLAS sizes its thread pool when numpy/scipy first load: one thread per process, as implicit
# advises (its ALS parallelises with OpenMP instead, which stays free to use every core), so
# web and worker processes don't oversubscribe the cores. Before any other import, so nothing
# can load numpy first; setdefault keeps an operator's explicit value.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# This process serves HTTP and websockets (uvicorn: the ws service, `make run`): settings give
# it a bounded database connection pool sized by DB_POOL_SIZE_ASGI (config/settings/base.py).
# Assigned, not defaulted: a parent process's role must not leak into this one.
os.environ["SHELFSENSE_PROCESS"] = "asgi"

from django.core.asgi import get_asgi_application

from config.local_services import local_services_use

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
local_services_use()  # the embedded servers of `make run` when DATABASE_URL/REDIS_URL are unset
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from apps.core.websockets import TenantWebsocketMiddleware  # noqa: E402
from config.websocket_urls import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            TenantWebsocketMiddleware(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
