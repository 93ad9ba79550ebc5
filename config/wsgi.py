"""WSGI entry point (HTTP only; config.asgi also serves websockets)."""

import os

# BLAS sizes its thread pool when numpy/scipy first load: one thread per process, as implicit
# advises (its ALS parallelises with OpenMP instead, which stays free to use every core), so
# web and worker processes don't oversubscribe the cores. Before any other import, so nothing
# can load numpy first; setdefault keeps an operator's explicit value.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
application = get_wsgi_application()
