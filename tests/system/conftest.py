"""The platform as it runs, for the system tests: the production web server (deploy/web.sh,
granian), the websocket server (uvicorn config.asgi, the `ws` service of deploy/), a Celery
worker and Celery beat with settings.CELERY_BEAT_SCHEDULER, each a subprocess on the pytest
run's test database, Redis key prefix and queues (tests/processes.py starts and stops them).

These tests run after every other test (like the browser test): the stores they create, and the
sign-ins they write to the public audit trail (append-only), are committed.
"""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from apps.core.cache import redis_client
from config.celery import app as celery_app
from tests.processes import BIN, WEB_SCRIPT, ProcessSet, free_port, http_status, wait_until
from tests.workers import queue_names

# Beat intervals of the run (seconds): every all-stores job comes round several times within
# the few minutes the scenario takes.
BEAT_INTERVALS = {
    "RECS_IMPRESSIONS_PERSIST_SECONDS": "3",
    "USAGE_ANOMALY_SCAN_SECONDS": "10",
    "API_KEYS_EXPIRY_NOTIFY_SECONDS": "10",
    "BILLING_USAGE_ROLLUP_SECONDS": "20",
    "BILLING_STRIPE_EVENTS_RETRY_SECONDS": "20",
}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: any(item.get_closest_marker(m) for m in ("system", "newcomer")))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed system test shows the platform's logs (server, worker, beat) with its report."""
    outcome = yield
    report = outcome.get_result()
    procs = getattr(item.module, "PLATFORM_PROCESSES", None)
    if report.failed and procs is not None:
        report.sections.append(("platform logs", procs.logs(max_chars=15_000)))


def database_url() -> str:
    """The pytest run's test database (pytest-django renamed NAME to test_<name>)."""
    db = settings.DATABASES["default"]
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user or password else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def purge_test_queues() -> None:
    """Messages an interrupted earlier run left on this run's queues name rows of another
    test database."""
    with celery_app.connection_for_write() as conn:
        for name in queue_names():
            celery_app.amqp.queues[name].bind(conn.default_channel).purge()


def forget_redis_keys(schema_names: list[str]) -> None:
    client = redis_client()
    for schema in schema_names:
        for key in client.scan_iter(match=f"*{schema}:*", count=1000):
            client.delete(key)


@pytest.fixture(scope="module")
def platform(request, django_db_setup, django_db_blocker, tmp_path_factory):
    """Web (granian), websockets (uvicorn), worker (2 processes) and beat, running until the
    module ends; their logs are attached to any failing test's report."""
    base = tmp_path_factory.mktemp("system")
    mail_dir = base / "mail"
    mail_dir.mkdir()
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.system_test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        # Same prefixes as this pytest process (config/settings/test.py reads them too).
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "CELERY_TEST_QUEUE_PREFIX": queue_names()[0].rsplit("-", 1)[0],
        "MEDIA_ROOT": str(base / "media"),
        "EMAIL_FILE_PATH": str(mail_dir),
        # Short hyper-parameter searches: the point is the pipeline, not the model.
        "RECS_TRAINING_SEARCH_TRIALS": "1",
        "LOG_LEVEL": "INFO",
        "PATH": f"{BIN}:/usr/bin:/bin",
        **BEAT_INTERVALS,
    }
    with django_db_blocker.unblock():
        purge_test_queues()
    procs = ProcessSet(base / "logs")
    request.module.PLATFORM_PROCESSES = procs
    try:
        # Pages and e-mails print the platform's own URLs: its port must be known up front.
        web_port = free_port()
        env["PUBLIC_PORT"] = str(web_port)
        web = _start_web(procs, env, web_port)
        ws = procs.web("uvicorn", env=env, workers=1)
        procs.worker(env=env, queues=queue_names(), concurrency=2)
        beat = procs.start(
            "beat",
            [BIN / "celery", "-A", "config", "beat", "--loglevel", "INFO",
             "--schedule", base / "celerybeat-schedule"],
            env=env,
        )  # fmt: skip
        wait_until(
            lambda: beat.alive() and "beat: Starting" in beat.log(),
            timeout=60,
            message="celery beat to start",
        )
        yield SimpleNamespace(
            procs=procs,
            env=env,
            web=web,
            web_port=web_port,
            ws_port=ws.port,
            public_url=f"http://localhost:{web_port}",
            mail_dir=mail_dir,
            beat=beat,
        )
    finally:
        procs.close()
        connection.set_schema_to_public()


def _start_web(procs: ProcessSet, env: dict, port: int):
    """deploy/web.sh (granian, 2 workers x 2 threads) on `port`, once /readyz answers 200."""
    process = procs.start(
        "granian",
        [WEB_SCRIPT],
        env={
            **env,
            "GRANIAN": str(BIN / "granian"),
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(port),
            "WEB_CONCURRENCY": "2",
            "WEB_THREADS": "2",
        },
        port=port,
    )
    wait_until(
        lambda: process.alive() and http_status(port, "/readyz") == 200,
        timeout=60,
        message=f"granian to answer /readyz on port {port}",
    )
    return process


def store_cleanup(django_db_blocker, slugs: list[str], emails: list[str]) -> None:
    """Drop the scenario's stores, their Redis keys and their people (the public audit rows
    stay: the trail is append-only)."""
    from apps.tenants.models import Tenant
    from apps.users.models import User

    with django_db_blocker.unblock():
        tenants = list(Tenant.objects.filter(slug__in=slugs))
        forget_redis_keys([tenant.schema_name for tenant in tenants])
        for tenant in tenants:
            tenant.delete(force_drop=True)
        User.objects.filter(email__in=emails).delete()
        connection.set_schema_to_public()
