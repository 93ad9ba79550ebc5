"""Cached `GET /api/v1/recommendations/users/{id}` under concurrent load, next to a bare Django
JSON view measured in the same run, against a production-style server on loopback. Also prints
the batch precompute rate.

Three floors are measured: `/api/bench/bare/{id}`, a view that only returns JSON, on the store's
host through the whole middleware stack (bench/serving_urls.py; the ratio is taken against it);
`/api/bench/bare-redis/{id}`, the same view plus one Redis MGET, the round trip any cached
request needs (the ceiling of the ratio for an endpoint that reads Redis); and `/healthz`, the
probe the first middleware answers before tenant resolution. All are loaded alike: wrk builds
each request in Lua with a random shopper id and sends the same headers.

Target: p95 <= 10 ms at >= 1,500 req/s on 2 cores, and >= 0.6 x the bare view's req/s. The
same request through a placement with three rules (`placement=three`: a price filter, an
on-sale boost x1.5 and at most 3 items per category, as bench/placements.py's "three"; the
seeded movies get log-normal prices and one in ten is on sale) is measured next to it, with the
same p95 and req/s targets (issue 16).
`--protocol issue15` runs instead the pinned protocol of issue 15 (bench/_serving_issue15.py:
1,143 shoppers, integration filters, a background event writer; p99 <= 15 ms, >= 0.30 x
/healthz), followed by the bare view + 1 MGET floor, whose ratio to /healthz is what any
endpoint making one Redis round trip reaches at the machine's load of the moment.
bench/serving_profile.py counts what each request of that protocol costs (queries, Redis
round trips, CPU microseconds), in process, without a server.

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/serving.py \
        [--server granian|gunicorn|uvicorn|all] [--workers 2] [--threads 2] [--grid 2x1,2x2,4x1] \
        [--worker-class sync] [--connections 32] [--seconds 10]

The server is the production one: granian through deploy/web.sh (workers and threads
through WEB_CONCURRENCY / WEB_THREADS, as in the container); `--server uvicorn` runs the ASGI
application (the `ws` service) for comparison.

A throw-away store `bench-serve-<random>` gets MovieLens-100K through the ingestion services
(943 shoppers, 1,682 movies, 100,000 ratings), is trained in-process (no hyper-parameter search,
to keep the run short), activated, and its top-100 lists precomputed for every shopper into
Redis. The server runs production settings (plus the bare view) with API_KEY_RATE_LIMIT unset (the
default 300/s per key would throttle the load generator). Load comes from wrk (a Lua script picks a
random shopper per request); without wrk a threaded Python client is used. Everything is
dropped afterwards (schema, artifacts, Redis keys).
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

for required in ("DATABASE_URL", "REDIS_URL"):
    if not os.environ.get(required):
        sys.exit(f"{required} must be set (the server runs with production settings).")

RUN_ID = secrets.token_hex(3)
SERVER_ENV = {
    "DJANGO_SETTINGS_MODULE": "bench.serving_settings",
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
    "API_KEY_RATE_LIMIT": "",
    "MEDIA_ROOT": os.environ.get("MEDIA_ROOT") or tempfile.mkdtemp(prefix="bench-serving-"),
}
os.environ.update(SERVER_ENV)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from apps.apikeys.services import api_key_create  # noqa: E402
from apps.catalog.services import events_ingest, items_upsert  # noqa: E402
from apps.core.cache import redis_client  # noqa: E402
from apps.merchandising.services import placement_create  # noqa: E402
from apps.recommendations import services  # noqa: E402
from apps.tenants.models import Tenant  # noqa: E402
from apps.tenants.selectors import store_domain  # noqa: E402
from apps.tenants.services import tenant_create  # noqa: E402
from bench._server import free_port, start_server, stop_server  # noqa: E402
from bench._serving_issue15 import run_protocol, seed_synthetic  # noqa: E402
from bench.placements import PLACEMENTS  # noqa: E402
from ml.datasets.movielens import iter_ml100k_items, iter_ml100k_ratings  # noqa: E402

DATASETS = ROOT / ".data" / "datasets"
BARE_VIEW = "/api/bench/bare/"
BARE_REDIS_VIEW = "/api/bench/bare-redis/"
TRAINING = {"search": False, "time_budget_seconds": 1}
# The recommendation and bare-view runs load wrk alike (a Lua-built path with a random shopper
# per request, the same headers), so the ratio compares the servers' work, not wrk's.
LUA_REQUEST = """
local shoppers = %d
request = function()
  return wrk.format(nil, "%s" .. math.random(1, shoppers) .. "%s")
end
"""
# The issue 16 placement: a price filter, an on-sale boost and a per-category cap (the same
# rules as bench/placements.py's "three"), on the same cached personal lists.
PLACEMENT = "three"
QUERIES = {"recs": "?k=10", "placement": f"?k=10&placement={PLACEMENT}"}
RECS_PATH = "/api/v1/recommendations/users/"
LUA_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("BENCH p50=%.3f p95=%.3f p99=%.3f errors=%d non2xx=%d\\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout, summary.errors.status))
end
"""


def _seed(tenant: Tenant, synthetic: bool = False) -> list[str]:
    """MovieLens-100K through the ingestion services (plus the synthetic shoppers of the
    issue15 protocol); returns the shoppers."""
    items = list(iter_ml100k_items(DATASETS))
    ratings = list(iter_ml100k_ratings(DATASETS))
    # Prices log-normal around 40 and one item in ten on sale, as in bench/placements.py, so
    # the placement's rules have something to act on.
    rng = random.Random(16)
    items_upsert(
        rows=[
            {"item_id": i, "title": t, "categories": g,
             "price": round(rng.lognormvariate(math.log(40), 0.8), 2),
             "attributes": {"on_sale": True} if rng.random() < 0.10 else {}}
            for i, t, g, _ in items
        ]
    )  # fmt: skip
    shift = int(timezone.now().timestamp()) - max(r[3] for r in ratings) - 60
    for start in range(0, len(ratings), 10_000):
        events_ingest(
            rows=[
                {"event_id": f"ml-{u}-{i}", "user_id": u, "item_id": i, "type": "rating",
                 "value": v, "timestamp": datetime.fromtimestamp(ts + shift, UTC)}
                for u, i, v, ts in ratings[start : start + 10_000]
            ],
            source="seed",
        )  # fmt: skip
    shoppers = sorted({r[0] for r in ratings}, key=int)
    if synthetic:
        shoppers += seed_synthetic(events_ingest, [i[0] for i in items], timezone.now())
    return shoppers


def _wrk(port: int, host: str, path_or_script: str, key: str | None, args) -> dict:
    cmd = [
        "wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.seconds}s",
        "-H", f"Host: {host}",
    ]  # fmt: skip
    if key:
        cmd += ["-H", f"Authorization: Bearer {key}"]
    if path_or_script.endswith(".lua"):
        cmd += ["-s", path_or_script, f"http://127.0.0.1:{port}/"]
    else:
        lua = Path(tempfile.mkstemp(suffix=".lua")[1])
        lua.write_text(LUA_DONE)
        cmd += ["-s", str(lua), f"http://127.0.0.1:{port}{path_or_script}"]
    before, groups_before = _machine_cpu(), _cpu_by_process()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    busy, steal, elapsed = (b - a for a, b in zip(before, _machine_cpu(), strict=True))
    groups = {
        name: seconds - groups_before.get(name, 0.0) for name, seconds in _cpu_by_process().items()
    }
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"BENCH p50=([\d.]+) p95=([\d.]+) p99=([\d.]+) errors=(\d+) non2xx=(\d+)", out)
    return {
        "rps": rps, "p50": float(m.group(1)), "p95": float(m.group(2)), "p99": float(m.group(3)),
        "errors": int(m.group(4)) + int(m.group(5)),
        # The whole machine's busy CPU per request (server, Redis, PostgreSQL, wrk, writer):
        # steadier than req/s on a shared host, whose neighbours take time, not CPU, from us.
        "cpu_us": busy / max(rps * elapsed, 1.0) * 1e6, "steal": steal / max(elapsed, 1e-9),
        "cpu_us_by": {
            name: seconds / max(rps * elapsed, 1.0) * 1e6 for name, seconds in groups.items()
        },
    }  # fmt: skip


_PROCESS_GROUPS = (
    ("granian", "web"), ("gunicorn", "web"), ("uvicorn", "web"), ("postgres", "postgres"),
    ("redis-server", "redis"), ("wrk", "wrk"), ("bench/serving", "bench"),
)  # fmt: skip


def _cpu_by_process() -> dict[str, float]:
    """CPU seconds used so far by the processes alive now, by kind (_PROCESS_GROUPS; the rest
    is "other"). Processes that ended meanwhile are not counted."""
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        name = next((g for marker, g in _PROCESS_GROUPS if marker in command), "other")
        totals[name] = totals.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return totals


def _machine_cpu() -> tuple[float, float, float]:
    """(busy CPU seconds, stolen CPU seconds, wall seconds) so far, from /proc/stat (zeros
    where there is none)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0, 0.0, time.monotonic()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick, time.monotonic()


def _python_load(port: int, host: str, paths, key: str | None, args) -> dict:
    """Fallback load generator: one keep-alive connection per thread."""
    deadline = time.monotonic() + args.seconds
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    headers = {"Host": host, **({"Authorization": f"Bearer {key}"} if key else {})}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        while time.monotonic() < deadline:
            start = time.perf_counter()
            conn.request("GET", random.choice(paths), headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(min(args.connections, 16))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {"rps": len(latencies) / elapsed, "p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99),
            "errors": errors[0]}  # fmt: skip


def run(
    kind: str,
    workers: int,
    threads: int,
    args,
    tenant: Tenant,
    key: str,
    shoppers: list[str],
    root: Path = ROOT,
    ingest_key: str = "",
) -> None:
    port = free_port()
    host = store_domain(tenant.slug)
    # A baseline checkout from before the floor views existed serves plain production settings
    # and is measured without them.
    urls = root / "bench" / "serving_urls.py"
    has_floors = urls.exists() and "bare-redis" in urls.read_text()
    env = SERVER_ENV if has_floors else {
        **SERVER_ENV, "DJANGO_SETTINGS_MODULE": "config.settings.production"
    }  # fmt: skip
    process = start_server(
        kind,
        port,
        workers=workers,
        threads=threads,
        env=env,
        worker_class=args.worker_class if kind == "gunicorn" else None,
        root=root,
    )
    paths = {"recs": RECS_PATH, "placement": RECS_PATH}
    if has_floors:
        paths |= {"bare": BARE_VIEW, "bare_redis": BARE_REDIS_VIEW}
    results = {}
    try:
        # Warm every worker: imports, the key cache, the store state, the model.
        for user in range(1, 200):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request(
                "GET",
                f"{RECS_PATH}{user}?k=10",
                headers={"Host": host, "Authorization": f"Bearer {key}"},
            )
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise SystemExit(f"warm-up failed: {response.status} {body[:200]!r}")
        if args.protocol == "issue15":
            label = f"{kind} workers={workers} threads={threads}" + (
                f" [code from {root}]" if root != ROOT else ""
            )
            run_protocol(
                port=port, host=host, key=key, ingest_key=ingest_key, shoppers=shoppers,
                items=[str(i) for i in range(1, 1683)], recs_path=RECS_PATH, wrk=_wrk,
                lua_done=LUA_DONE, label=label,
                floor_path=BARE_REDIS_VIEW if has_floors else None,
            )  # fmt: skip
            return
        if shutil.which("wrk"):
            for name, path in paths.items():
                script = Path(tempfile.mkstemp(suffix=".lua")[1])
                query = QUERIES.get(name, "?k=10")
                script.write_text(LUA_REQUEST % (len(shoppers), path, query) + LUA_DONE)
                results[name] = _wrk(port, host, str(script), key, args)
            results["probe"] = _wrk(port, host, "/healthz", None, args)
            tool = "wrk"
        else:
            for name, path in paths.items():
                shopper_paths = [f"{path}{u}{QUERIES.get(name, '?k=10')}" for u in shoppers]
                results[name] = _python_load(port, host, shopper_paths, key, args)
            results["probe"] = _python_load(port, host, ["/healthz"], None, args)
            tool = "python threads"
    finally:
        stop_server(process)
    worker_class = f" ({args.worker_class or 'gthread'})" if kind == "gunicorn" else ""
    label = f"{kind} workers={workers}" + (
        f" threads={threads}{worker_class}" if kind != "uvicorn" else ""
    )
    if root != ROOT:
        label += f" [code from {root}]"
    print(f"\n{label}, {args.connections} connections, {args.seconds}s each, load: {tool}")
    print(f"{'endpoint':<50}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
    names = {
        "recs": "GET /recommendations/users/{id} (cached)",
        "placement": f"  same, placement={PLACEMENT} (3 rules)",
        "bare": f"GET {BARE_VIEW}{{id}} (bare Django view)",
        "bare_redis": f"GET {BARE_REDIS_VIEW}{{id}} (bare view + 1 MGET)",
        "probe": "GET /healthz (probe, first middleware)",
    }
    for name, r in results.items():
        print(f"{names[name]:<50}{r['rps']:>9.0f}{r['p50']:>9.2f}{r['p95']:>9.2f}"
              f"{r['p99']:>9.2f}{r['errors']:>8}")  # fmt: skip
    recs = results["recs"]
    floor = results.get("bare", results["probe"])
    ratio = recs["rps"] / floor["rps"] if floor["rps"] else 0.0
    ok = recs["p95"] <= 10 and recs["rps"] >= 1500 and ratio >= 0.6
    line = f"ratio to the bare view: {ratio:.2f}"
    if "bare_redis" in results:
        line += f" (bare view + 1 MGET: {results['bare_redis']['rps'] / floor['rps']:.2f})"
    if "placement" in results:
        placed = results["placement"]
        placed_ok = placed["p95"] <= 10 and placed["rps"] >= 1500
        print(f"placement={PLACEMENT}: {placed['rps'] / recs['rps']:.2f}x the plain request's "
              f"req/s; issue 11's targets (p95<=10ms, >=1500 req/s): "
              f"{'met' if placed_ok else 'NOT met'}")  # fmt: skip
    print(f"{line}  target (p95<=10ms, >=1500 req/s, >=0.6x): {'met' if ok else 'NOT met'}  "
          f"load: {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server", choices=["granian", "gunicorn", "uvicorn", "all"], default="granian"
    )
    parser.add_argument("--workers", type=int, default=2, help="WEB_CONCURRENCY")
    parser.add_argument("--threads", type=int, default=2, help="WEB_THREADS (granian, gunicorn)")
    parser.add_argument(
        "--grid",
        default="",
        help="WORKERSxTHREADS list run in turn on the same data, e.g. 2x1,2x2,4x1",
    )
    parser.add_argument(
        "--worker-class", default=None, help="worker class of --server gunicorn (gthread)"
    )
    parser.add_argument(
        "--baseline-root",
        type=Path,
        default=None,
        help="another checkout (e.g. before a change) served in turn with this one, same data",
    )
    parser.add_argument(
        "--protocol",
        choices=["floors", "issue15"],
        default="floors",
        help="issue15: the pinned protocol of bench/_serving_issue15.py (2 workers x 1 thread, "
        "8 connections, 10 s + 30 s, >= 1,000 shoppers, filters, a background event writer)",
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if args.protocol == "issue15":
        args.server, args.workers, args.grid = "granian", 2, ""

    print(f"cpus: {os.cpu_count()}  load average: {os.getloadavg()}", flush=True)
    call_command("setup_platform", verbosity=0)
    tenant = tenant_create(slug=f"bench-serve-{RUN_ID}", name="Serving bench")
    try:
        with tenant_context(tenant):
            started = time.perf_counter()
            shoppers = _seed(tenant, synthetic=args.protocol == "issue15")
            print(f"seeded MovieLens-100K in {time.perf_counter() - started:.1f}s", flush=True)
            version = services.model_version_start(
                actor_label="bench", config=TRAINING, dispatch=False
            )
            started = time.perf_counter()
            version = services.model_version_train(version_id=version.pk, precompute="none")
            print(f"trained {version.label} ({version.status}, {version.strategy}) in "
                  f"{time.perf_counter() - started:.1f}s", flush=True)  # fmt: skip
            if version.status != "active":
                raise SystemExit(f"model not activated: {version.activation_note}")
            report = services.recommendations_precompute(version_id=version.pk, active_days=0)
            print(f"precompute: {report.shoppers} shoppers in {report.seconds:.2f}s = "
                  f"{report.per_second:,.0f} shoppers/s (end to end: model, encode, Redis)",
                  flush=True)  # fmt: skip
            placement_create(name=PLACEMENT, scenario="personal", rules=PLACEMENTS[PLACEMENT])
            _, key = api_key_create(name="bench", scopes=["recommend"], actor_label="bench")
            _, ingest_key = api_key_create(name="writer", scopes=["ingest"], actor_label="bench")
        runs = []
        grid = args.grid or f"{args.workers}x{args.threads}"
        for kind in ("granian", "gunicorn"):
            if args.server not in (kind, "all"):
                continue
            for cell in grid.split(","):
                workers, _, threads = cell.partition("x")
                runs.append((kind, int(workers), int(threads or 1)))
        if args.server in ("uvicorn", "all"):
            runs.append(("uvicorn", args.workers, 1))
        for kind, workers, threads in runs:
            if args.baseline_root is not None:
                run(kind, workers, threads, args, tenant, key, shoppers, args.baseline_root,
                    ingest_key)  # fmt: skip
            run(kind, workers, threads, args, tenant, key, shoppers, ingest_key=ingest_key)
    finally:
        connection.set_schema_to_public()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
        Tenant.objects.filter(pk=tenant.pk).delete()
        client = redis_client()
        for redis_key in client.scan_iter(match=f"{tenant.schema_name}:*", count=1000):
            client.delete(redis_key)
        shutil.rmtree(Path(SERVER_ENV["MEDIA_ROOT"]) / "models" / tenant.schema_name,
                      ignore_errors=True)  # fmt: skip


if __name__ == "__main__":
    main()
