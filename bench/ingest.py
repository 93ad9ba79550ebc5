"""Events/s through the HTTP API (`POST /api/v1/events/bulk`) against a production-style server.

Target: >= 25,000 events/s sustained on 2 cores, 1,000-event batches, 4 concurrent clients over
loopback keep-alive HTTP, PostgreSQL and Redis on the same box; plus p50/p95/p99 batch latency.

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/ingest.py \
        [--server granian|gunicorn|uvicorn|all] [--workers 2] [--threads 2] [--batches 600]

The script migrates the platform (setup_platform), creates a throw-away store `bench-<random>`
with 10,000 catalog items and an `ingest` API key, starts the server itself with
config.settings.production (DEBUG off; SECRET_KEY/ALLOWED_HOSTS set here, DATABASE_URL/REDIS_URL
taken from the environment) on 127.0.0.1 (granian through deploy/web.sh, as in the
container; workers/threads through WEB_CONCURRENCY/WEB_THREADS), sends pre-built batches with
unique event_ids from client threads (bounded by --batches and --max-seconds), checks the stored
count, then stops the server and drops the store (schema, API keys, Redis keys).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import secrets
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

for required in ("DATABASE_URL", "REDIS_URL"):
    if not os.environ.get(required):
        sys.exit(f"{required} must be set (the server runs with production settings).")

RUN_ID = secrets.token_hex(3)
SERVER_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(40),
    "PII_ENCRYPTION_KEYS": os.environ.get("PII_ENCRYPTION_KEYS") or Fernet.generate_key().decode(),
    # Production settings refuse to start without a delivering email backend; the bench sends
    # no mail. It talks plain HTTP on loopback, so no redirect to HTTPS.
    "EMAIL_URL": os.environ.get("EMAIL_URL") or "smtp://127.0.0.1:9",
    "SECURE_SSL_REDIRECT": "false",
    "ALLOWED_HOSTS": ".localhost,localhost,127.0.0.1",
    "DEBUG": "false",
    "LOG_LEVEL": "WARNING",
    "CACHE_KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "ss"),
}
os.environ.update(SERVER_ENV)

import django  # noqa: E402

django.setup()

import orjson  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from apps.apikeys.services import api_key_create  # noqa: E402
from apps.billing.services import plans_seed, subscription_plan_assign  # noqa: E402
from apps.catalog.models import Event  # noqa: E402
from apps.catalog.services import items_upsert  # noqa: E402
from apps.core.cache import redis_client  # noqa: E402
from apps.tenants.models import Tenant  # noqa: E402
from apps.tenants.selectors import store_domain  # noqa: E402
from apps.tenants.services import tenant_create  # noqa: E402
from bench._server import free_port, start_server, stop_server  # noqa: E402

ITEMS = 10_000
SHOPPERS = 100_000
TYPES = ["view"] * 14 + ["add_to_cart"] * 3 + ["click"] * 2 + ["purchase"]


def _bodies(count: int, batch: int, tag: str) -> list[bytes]:
    now = datetime.now(UTC)
    bodies = []
    for number in range(count):
        stamp = (now - timedelta(seconds=count - number)).isoformat()
        bodies.append(
            orjson.dumps(
                [
                    {
                        "event_id": f"{tag}-{number}-{index}",
                        "user_id": f"shopper-{random.randrange(SHOPPERS)}",
                        "item_id": f"sku-{random.randrange(ITEMS)}",
                        "type": kind,
                        "value": 1 if kind == "purchase" else None,
                        "timestamp": stamp,
                    }
                    for index, kind in enumerate(random.choices(TYPES, k=batch))
                ]
            )
        )
    return bodies


def _client(port, host, key, bodies, deadline, latencies, failures, accepted) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Host": host, "Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for body in bodies:
        if time.monotonic() > deadline:
            break
        started = time.perf_counter()
        conn.request("POST", "/api/v1/events/bulk", body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 202:
            failures.append((response.status, payload[:300]))
            continue
        accepted.append(orjson.loads(payload)["accepted"])
    conn.close()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def run(kind: str, args, tenant: Tenant, key: str) -> dict:
    port = free_port()
    host = store_domain(tenant.slug)
    tag = f"{kind}-{RUN_ID}-{args.workers}-{args.threads}"
    per_client = args.batches // args.clients
    client_bodies = [_bodies(per_client, args.batch, f"{tag}-{c}") for c in range(args.clients)]
    warmup = _bodies(args.clients * 3, args.batch, f"{tag}-warm")
    # The production server: granian through deploy/web.sh (gunicorn or uvicorn to compare).
    process = start_server(kind, port, workers=args.workers, threads=args.threads, env=SERVER_ENV)
    try:
        # Warm every worker: connections, imports, the key cache.
        threads = [
            threading.Thread(
                target=_client,
                args=(
                    port,
                    host,
                    key,
                    warmup[c :: args.clients],
                    time.monotonic() + 60,
                    [],
                    [],
                    [],
                ),
            )
            for c in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        latencies: list[float] = []
        failures: list = []
        accepted: list[int] = []
        deadline = time.monotonic() + args.max_seconds
        threads = [
            threading.Thread(
                target=_client,
                args=(port, host, key, bodies, deadline, latencies, failures, accepted),
            )
            for bodies in client_bodies
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        stop_server(process)
    with tenant_context(tenant):
        stored = (
            Event.objects.filter(event_id__startswith=f"{tag}-")
            .exclude(event_id__startswith=f"{tag}-warm")
            .count()
        )
    total = sum(accepted)
    label = f"{kind} workers={args.workers}" + (
        f" threads={args.threads}" if kind != "uvicorn" else ""
    )
    result = {
        "label": label,
        "events_per_s": total / elapsed,
        "batches": len(latencies),
        "p50": _percentile(latencies, 0.50) * 1000,
        "p95": _percentile(latencies, 0.95) * 1000,
        "p99": _percentile(latencies, 0.99) * 1000,
        "failures": len(failures),
    }
    print(
        f"{label}: {total:,} events in {elapsed:.1f}s = {result['events_per_s']:,.0f} events/s; "
        f"batch latency p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms, "
        f"p99 {result['p99']:.1f} ms; {len(failures)} failed batches; stored {stored:,} "
        f"(target >= 25,000 events/s)",
        flush=True,
    )
    if failures:
        print(f"  first failure: {failures[0]}")
    if stored != total:
        print(f"  MISMATCH: responses accepted {total:,} but {stored:,} stored")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server", choices=["granian", "gunicorn", "uvicorn", "all"], default="granian"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="WEB_THREADS (granian, gunicorn)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=600, help="timed batches, all clients")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()

    print(f"cpus: {os.cpu_count()}  load average: {os.getloadavg()}", flush=True)
    call_command("setup_platform", verbosity=0)
    tenant = tenant_create(slug=f"bench-ingest-{RUN_ID}", name="Ingest bench")
    try:
        # A plan whose monthly event quota the run cannot exhaust.
        plans_seed()
        subscription_plan_assign(tenant=tenant, plan_code="enterprise", actor_label="bench")
        with tenant_context(tenant):
            items_upsert(
                rows=[
                    {"item_id": f"sku-{n}", "title": f"Item {n}", "categories": ["bench"]}
                    for n in range(ITEMS)
                ]
            )
            _, key = api_key_create(name="bench", scopes=["ingest"], actor_label="bench")
        kinds = ["granian", "gunicorn", "uvicorn"] if args.server == "all" else [args.server]
        for kind in kinds:
            run(kind, args, tenant, key)
    finally:
        connection.set_schema_to_public()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
        Tenant.objects.filter(pk=tenant.pk).delete()
        client = redis_client()
        for pattern in (f"{tenant.schema_name}:*",):
            for redis_key in client.scan_iter(match=pattern, count=1000):
                client.delete(redis_key)


if __name__ == "__main__":
    main()
