"""Celery application. Tasks run in the schema of the tenant they were sent from
(tenant-schemas-celery stamps the schema into the message headers)."""

import os

# BLAS sizes its thread pool when numpy/scipy first load: one thread per process, as implicit
# advises (its ALS parallelises with OpenMP instead, which stays free to use every core), so
# web and worker processes don't oversubscribe the cores. Before any other import, so nothing
# can load numpy first; setdefault keeps an operator's explicit value.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from tenant_schemas_celery.app import CeleryApp as TenantAwareCeleryApp

from config.local_services import local_services_use

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
local_services_use()  # the embedded servers of `make run` when DATABASE_URL/REDIS_URL are unset

app = TenantAwareCeleryApp("shelfsense")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
