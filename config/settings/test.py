"""The pytest run: real PostgreSQL schemas and real Redis, fast hashing, no outside network."""

from kombu import Exchange, Queue

from .base import *  # noqa: F403
from .base import (
    CACHES,
    CELERY_TASK_DEFAULT_QUEUE,
    CELERY_TASK_ROUTES,
    CHANNEL_LAYERS,
    STORAGES,
    env,
)

DEBUG = False
SECRET_KEY = "test-only-key"  # noqa: S105
ALLOWED_HOSTS = [".localhost", "localhost", "127.0.0.1", "testserver"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
METRICS_TOKEN = "test-metrics-token"  # noqa: S105

# Keys of a test run never mix with a developer's running platform on the same Redis.
# Parallel runs on one Redis set distinct CACHE_KEY_PREFIX values.
CACHES["default"]["KEY_PREFIX"] = env("CACHE_KEY_PREFIX", default="ss-test")
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = CACHES["default"]["KEY_PREFIX"] + "-channels"
STORAGES = {
    **STORAGES,  # default and artifacts: as STORAGE_BACKEND says (file system unless set)
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Celery runs in a real worker thread against the real broker; results come back through Redis.
CELERY_RESULT_BACKEND = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Queues of their own: a developer's `make run` worker (default, training) on the same broker
# never takes a test's task, and a test worker never takes theirs. Test workers consume every
# queue of CELERY_TASK_QUEUES (tests/workers.py). Parallel runs sharing one broker set distinct
# CELERY_TEST_QUEUE_PREFIX values (or brokers).
# Every queue of base.py gets the prefix: default → test-default, training → test-training.
_QUEUE_PREFIX = env("CELERY_TEST_QUEUE_PREFIX", default="test")
CELERY_TASK_DEFAULT_QUEUE = f"{_QUEUE_PREFIX}-{CELERY_TASK_DEFAULT_QUEUE}"
CELERY_TASK_ROUTES = {
    name: {**route, "queue": f"{_QUEUE_PREFIX}-{route['queue']}"}
    for name, route in CELERY_TASK_ROUTES.items()
}
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name), routing_key=name)
    for name in dict.fromkeys(
        [CELERY_TASK_DEFAULT_QUEUE, *(route["queue"] for route in CELERY_TASK_ROUTES.values())]
    )
]

# Serve static files straight from the source folders; no collectstatic needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
