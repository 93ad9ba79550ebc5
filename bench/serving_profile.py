"""Per-request cost of the issue 15 serving protocol, in process: what the load of
`bench/serving.py --protocol issue15` asks of one request, counted rather than timed under a
shared machine's noise.

Seeds the same store as bench/serving.py (MovieLens-100K plus the synthetic shoppers), trains and
precomputes, then calls the production WSGI application directly (no server, no sockets to
the client) with the protocol's request mix and writer: for each kind of request it prints the
PostgreSQL queries, Redis round trips and CPU microseconds per request, and with `--profile`
the top functions of a cProfile run over the mix.

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/serving_profile.py \
        [--requests 3000] [--floor-requests 1000] [--profile [--profile-out FILE]] [--sql]

Queries are counted at Django's cursor (the COPY of an event batch is not), Redis round trips
at redis-py's connection (one per command or pipeline sent). CPU is the process's, so on a
busy machine it includes what waiting costs (a blocking round trip on a crowded CPU is paid
again in cold caches): compare runs made under similar load.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import bench.serving as bench  # noqa: E402, I001  (first: sets the server's environment, django.setup())
import redis  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.backends.utils import CursorWrapper  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from apps.apikeys.services import api_key_create  # noqa: E402
from apps.core.cache import redis_client  # noqa: E402
from apps.recommendations import services  # noqa: E402
from apps.tenants.models import Tenant  # noqa: E402
from apps.tenants.selectors import store_domain  # noqa: E402
from apps.tenants.services import tenant_create  # noqa: E402
from bench._serving_issue15 import WRITER_SHARE, Writer, request_paths  # noqa: E402

EVENTS_PATH = "/api/v1/events/bulk"

os.environ["SHELFSENSE_PROCESS"] = "web"
from config.wsgi import application  # noqa: E402


class Counters:
    show_sql = False
    queries = 0
    redis_trips = 0


_execute = CursorWrapper._execute_with_wrappers


def _count_query(self, sql, params, many, executor):
    Counters.queries += 1
    if Counters.show_sql:
        print("   SQL:", " ".join(str(sql).split())[:150])
    return _execute(self, sql, params, many, executor)


CursorWrapper._execute_with_wrappers = _count_query


_send = redis.connection.Connection.send_packed_command


def _count_send(self, command, check_health=True):
    Counters.redis_trips += 1
    return _send(self, command, check_health)


redis.connection.Connection.send_packed_command = _count_send


def _call(host: str, method: str, path: str, key: str, body: bytes = b"") -> int:
    path, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": host,
        "SERVER_PORT": "80",
        "HTTP_HOST": host,
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "wsgi.errors": sys.stderr,
    }
    status = []
    result = application(environ, lambda s, h, exc_info=None: status.append(s))
    b"".join(result)
    if hasattr(result, "close"):
        result.close()
    return int(status[0].split()[0])


def _report(kinds: dict[str, list[tuple[float, int, int]]], requests: int) -> None:
    print(f"\n{requests} requests, 1 shopper in {WRITER_SHARE} written; load "
          f"{os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"{'request':<34}{'n':>6}{'CPU us p50':>12}{'mean':>8}{'queries':>9}{'redis':>7}")
    for kind, rows in kinds.items():
        cpus = sorted(r[0] for r in rows)
        print(f"{kind:<34}{len(rows):>6}{cpus[len(cpus) // 2] * 1e6:>12.0f}"
              f"{sum(cpus) / len(cpus) * 1e6:>8.0f}"
              f"{sum(r[1] for r in rows) / len(rows):>9.2f}"
              f"{sum(r[2] for r in rows) / len(rows):>7.2f}")  # fmt: skip


def _print_profile(profiler: cProfile.Profile, out_path: str | None) -> None:
    if out_path:
        profiler.dump_stats(out_path)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(60)
    stats.sort_stats("tottime").print_stats(30)
    print(out.getvalue())
    by_area: dict[str, float] = {}
    for (filename, _line, _name), row in stats.stats.items():
        if "site-packages/" in filename:
            area = filename.split("site-packages/")[1].split("/")[0]
        elif filename.startswith(str(ROOT)):
            area = "/".join(Path(filename).relative_to(ROOT).parts[:2])
        else:
            area = "other (builtins, stdlib)"
        by_area[area] = by_area.get(area, 0.0) + row[2]
    total = sum(by_area.values()) or 1.0
    print("own CPU time by area (profiled):")
    for area, seconds in sorted(by_area.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {area:<40}{seconds / total:>7.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--floor-requests", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="cProfile (CPU time) the mix")
    parser.add_argument("--profile-out", default=None, help="also dump the profile here")
    parser.add_argument("--sql", action="store_true", help="print the SQL of two event POSTs")
    args = parser.parse_args()
    call_command("setup_platform", verbosity=0)
    tenant = tenant_create(slug=f"bench-prof-{bench.RUN_ID}", name="Serving profile")
    try:
        with tenant_context(tenant):
            shoppers = bench._seed(tenant, synthetic=True)
            version = services.model_version_start(
                actor_label="bench", config=bench.TRAINING, dispatch=False
            )
            services.model_version_train(version_id=version.pk, precompute="none")
            services.recommendations_precompute(version_id=version.pk, active_days=0)
            _, key = api_key_create(name="bench", scopes=["recommend"], actor_label="bench")
            _, ingest_key = api_key_create(name="writer", scopes=["ingest"], actor_label="bench")
        connection.set_schema_to_public()
        host = store_domain(tenant.slug)
        paths = request_paths(bench.RECS_PATH, shoppers)
        writer = Writer(0, host, ingest_key, shoppers, [str(i) for i in range(1, 1683)])
        written = set(writer.shoppers)
        rng = random.Random(50)
        for path in paths[:300]:  # warm: imports, key cache, state, model
            assert _call(host, "GET", path, key) == 200
        kinds: dict[str, list[tuple[float, int, int]]] = {}
        # Floors first: the probe, a bare view, a bare view + one Redis round trip.
        floors = (
            ("GET /healthz (floor)", "/healthz"),
            ("GET bare view (floor)", bench.BARE_VIEW + "1"),
            ("GET bare view + MGET (floor)", bench.BARE_REDIS_VIEW + "1"),
        )
        for kind, path in floors:
            for _ in range(args.floor_requests):
                q0, r0, c0 = Counters.queries, Counters.redis_trips, time.process_time()
                assert _call(host, "GET", path, key) == 200, path
                kinds.setdefault(kind, []).append(
                    (time.process_time() - c0, Counters.queries - q0, Counters.redis_trips - r0)
                )
        # The protocol's mix: one event per 30 requests (50 events/s next to ~1,500 req/s).
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        sent = 0
        for n in range(args.requests):
            if n % 30 == 0:
                body = orjson.dumps([writer._event(rng, sent)])
                sent += 1
                kind, method, path, k = "POST /events/bulk (1 event)", "POST", EVENTS_PATH, \
                    ingest_key  # fmt: skip
            else:
                path, body = paths[n % len(paths)], b""
                user = path.rsplit("/", 1)[1].partition("?")[0]
                kind = "GET recs (writer's shopper)" if user in written else "GET recs (others)"
                method, k = "GET", key
            Counters.show_sql = args.sql and method == "POST" and sent in (20, 21)
            if Counters.show_sql:
                print(f"{method} {path}:")
            q0, r0, c0 = Counters.queries, Counters.redis_trips, time.process_time()
            if profiler:
                profiler.enable()
            status = _call(host, method, path, k, body)
            if profiler:
                profiler.disable()
            cpu = time.process_time() - c0
            assert status in (200, 202), (status, path)
            kinds.setdefault(kind, []).append(
                (cpu, Counters.queries - q0, Counters.redis_trips - r0)
            )
        _report(kinds, args.requests)
        if profiler:
            _print_profile(profiler, args.profile_out)
    finally:
        connection.set_schema_to_public()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
        Tenant.objects.filter(pk=tenant.pk).delete()
        client = redis_client()
        for redis_key in client.scan_iter(match=f"{tenant.schema_name}:*", count=1000):
            client.delete(redis_key)


if __name__ == "__main__":
    main()
