"""The pinned protocol of issue 15 item 6 for bench/serving.py (`--protocol issue15`): cached
personal lists under a realistic load while fresh lists keep being invalidated.

- the production server (deploy/web.sh, granian), 2 workers, wrk on the same machine,
  8 connections, 2 wrk threads; 10 s warm-up (discarded), then 30 s measured;
- requests rotate over every seeded shopper (MovieLens-100K's 943 plus SYNTHETIC_SHOPPERS
  synthetic ones, all with cached lists) with filters as integrations send them (FILTERS);
- meanwhile a writer thread posts one event per `POST /api/v1/events/bulk` for one shopper in
  five (every fifth of the rotation) at WRITE_RATE events/s, so their lists are re-scored and
  their fresh lists invalidated all the time (it runs through the warm-up and the measurement);
- `/healthz` with the same wrk settings (warm-up, then measured) in the same run, the writer
  stopped: the ratio is taken against the server's bare probe;
- then the bare view + one Redis MGET of bench/serving_urls.py (same wrk settings, same
  shoppers): the ratio a request that makes one Redis round trip and nothing else reaches on
  this machine at this load, printed next to the target's ratio (on a busy shared machine a
  round trip costs several times what it does on a quiet one; bench/serving_profile.py counts
  what each request costs).

Each line also gives the whole machine's busy CPU per request during its measurement (the
server, Redis, PostgreSQL, wrk and the writer together) and the share of time the host stole:
on a shared host req/s moves with the neighbours, CPU per request much less.

Targets: p99 <= 15 ms and req/s >= 0.30 x /healthz. Imports nothing from Django at module level
beyond what bench/serving.py set up.
"""

from __future__ import annotations

import http.client
import os
import random
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

SYNTHETIC_SHOPPERS = 200
SYNTHETIC_EVENTS = 30
CONNECTIONS = 8
WARMUP_SECONDS = 10
MEASURED_SECONDS = 30
WRITE_RATE = 50.0
WRITER_SHARE = 5  # one shopper in five
# (weight, query): what integrations send; categories are MovieLens genres.
FILTERS = (
    (50, "?k=10&exclude_seen=true"),
    (20, "?k=10&exclude_seen=true&in_stock=true"),
    (15, "?k=10&category=Drama&exclude_seen=true"),
    (5, "?k=10&category=Comedy&in_stock=true&exclude_seen=true"),
    (10, "?k=10"),
)
LUA = """
local paths = {%s}
local n = #paths
local i = 0
setup = function(thread) thread:set("offset", math.random(0, n - 1)) end
init = function(args) i = offset end
request = function()
  i = i %% n + 1
  return wrk.format(nil, paths[i])
end
"""


def seed_synthetic(events_ingest, item_ids: list[str], now: datetime) -> list[str]:
    """SYNTHETIC_SHOPPERS shoppers `syn-<n>` with SYNTHETIC_EVENTS ratings each, popular-biased,
    before training (so they get cached lists like the MovieLens shoppers)."""
    rng = random.Random(15)
    weights = [1.0 / (rank + 10) for rank in range(len(item_ids))]
    rows = []
    base = now.timestamp() - 86400
    for n in range(SYNTHETIC_SHOPPERS):
        user = f"syn-{n}"
        for j, item in enumerate(set(rng.choices(item_ids, weights, k=SYNTHETIC_EVENTS))):
            rows.append({"event_id": f"syn-{n}-{j}", "user_id": user, "item_id": item,
                         "type": "rating", "value": float(rng.randint(3, 5)),
                         "timestamp": datetime.fromtimestamp(base + n * 60 + j, UTC)})  # fmt: skip
    events_ingest(rows=rows, source="seed")
    return [f"syn-{n}" for n in range(SYNTHETIC_SHOPPERS)]


def request_paths(recs_path: str, shoppers: list[str]) -> list[str]:
    rng = random.Random(6)
    weights = [w for w, _ in FILTERS]
    queries = [q for _, q in FILTERS]
    return [recs_path + user + rng.choices(queries, weights)[0] for user in shoppers]


class Writer(threading.Thread):
    """Posts events of every WRITER_SHARE-th shopper at WRITE_RATE/s, one keep-alive
    connection: each POST carries the events due since the previous one (one when the server
    keeps up), as an integration forwarding its event stream does."""

    def __init__(self, port: int, host: str, key: str, shoppers: list[str], items: list[str]):
        super().__init__(daemon=True)
        self.port, self.host, self.key = port, host, key
        self.shoppers = shoppers[::WRITER_SHARE]
        self.items = items
        self.stop = threading.Event()
        self.sent = self.failed = self.posts = 0
        self.latencies: list[float] = []

    def run(self) -> None:
        rng = random.Random(50)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Host": self.host, "Authorization": f"Bearer {self.key}",
                   "Content-Type": "application/json"}  # fmt: skip
        started = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - started) * WRITE_RATE) + 1 - self.sent
            if due <= 0:
                time.sleep(1 / WRITE_RATE)
                continue
            events = [self._event(rng, self.sent + n) for n in range(min(due, 100))]
            begin = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/events/bulk", orjson.dumps(events), headers)
                response = conn.getresponse()
                response.read()
                if response.status != 202:
                    self.failed += 1
            except OSError:
                self.failed += 1
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self.latencies.append(time.perf_counter() - begin)
            self.sent += len(events)
            self.posts += 1

    def _event(self, rng: random.Random, n: int) -> dict:
        kind = rng.choices(["view", "rating", "purchase", "dismiss"], [6, 2, 1, 1])[0]
        event = {"event_id": f"w-{os.getpid()}-{n}",
                 "user_id": self.shoppers[n % len(self.shoppers)],
                 "item_id": rng.choice(self.items), "type": kind,
                 "timestamp": datetime.now(UTC).isoformat()}  # fmt: skip
        if kind == "rating":
            event["value"] = float(rng.randint(1, 5))
        return event


def _strategies(port: int, host: str, key: str, recs_path: str, shoppers: list[str]) -> dict:
    """How many of `shoppers` get each strategy: shows that the writer's shoppers are served
    re-scored (`+fresh`) lists."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    counts: dict[str, int] = {}
    for user in shoppers:
        conn.request("GET", f"{recs_path}{user}?k=10", headers={
            "Host": host, "Authorization": f"Bearer {key}"})  # fmt: skip
        strategy = orjson.loads(conn.getresponse().read())["strategy"]
        counts[strategy] = counts.get(strategy, 0) + 1
    return counts


def run_protocol(
    *, port: int, host: str, key: str, ingest_key: str, shoppers: list[str], items: list[str],
    recs_path: str, wrk, lua_done: str, label: str, floor_path: str | None = None,
) -> None:  # fmt: skip
    """Load the running server as the module docstring says and print the results; `wrk` is
    bench/serving.py's `_wrk(port, host, script, key, args)`. `floor_path`: a view that only
    makes one Redis round trip (bench/serving_urls.py), measured like the recommendations
    after /healthz: the ratio any cached endpoint could reach on this machine at this load."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    paths = request_paths(recs_path, shoppers)
    script.write_text(LUA % ",".join(f'"{p}"' for p in paths) + lua_done)

    class Args:
        connections = CONNECTIONS
        seconds = WARMUP_SECONDS

    writer = Writer(port, host, ingest_key, shoppers, items)
    writer.start()
    try:
        wrk(port, host, str(script), key, Args)
        writes_before, posts_before = writer.sent, writer.posts
        Args.seconds = MEASURED_SECONDS
        load_before = os.getloadavg()[0]
        recs = wrk(port, host, str(script), key, Args)
        writes, posts = writer.sent - writes_before, writer.posts - posts_before
        strategies = _strategies(port, host, key, recs_path, writer.shoppers[:40])
    finally:
        writer.stop.set()
        writer.join()
    Args.seconds = WARMUP_SECONDS
    wrk(port, host, "/healthz", None, Args)
    Args.seconds = MEASURED_SECONDS
    probe = wrk(port, host, "/healthz", None, Args)
    floor = None
    if floor_path is not None:
        floor_script = Path(tempfile.mkstemp(suffix=".lua")[1])
        floor_script.write_text(
            LUA % ",".join(f'"{floor_path}{user}"' for user in shoppers) + lua_done
        )
        Args.seconds = WARMUP_SECONDS
        wrk(port, host, str(floor_script), key, Args)
        Args.seconds = MEASURED_SECONDS
        floor = wrk(port, host, str(floor_script), key, Args)
    ratio = recs["rps"] / probe["rps"] if probe["rps"] else 0.0
    writes_ms = sorted(writer.latencies)
    print(
        f"\n{label}: protocol issue15, {CONNECTIONS} connections, {WARMUP_SECONDS}s warm-up + "
        f"{MEASURED_SECONDS}s measured, {len(shoppers)} shoppers rotating, writer "
        f"{writes / MEASURED_SECONDS:.1f} events/s in {posts / MEASURED_SECONDS:.1f} POST/s "
        f"for 1 in {WRITER_SHARE} "
        f"(failed {writer.failed}, POST p50 {writes_ms[len(writes_ms) // 2] * 1000:.1f} ms); "
        f"the writer's shoppers are served {strategies}"
    )
    print(f"{'endpoint':<50}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
          f"{'CPU us/req':>12}{'steal':>7}")  # fmt: skip
    rows = [("GET /recommendations/users/{id} (mixed filters)", recs),
            ("GET /healthz (same wrk settings, writer off)", probe)]  # fmt: skip
    if floor is not None:
        rows.append(("GET bare view + 1 Redis MGET (writer off)", floor))
    for name, r in rows:
        print(f"{name:<50}{r['rps']:>9.0f}{r['p50']:>9.2f}{r['p95']:>9.2f}{r['p99']:>9.2f}"
              f"{r['errors']:>8}{r['cpu_us']:>12.0f}{r['steal']:>7.0%}")  # fmt: skip
    by_process = ", ".join(
        f"{name} {us:.0f}" for name, us in sorted(recs["cpu_us_by"].items(), key=lambda kv: -kv[1])
    )
    print(f"recommendations' CPU us/req by process: {by_process}")
    ok = recs["p99"] <= 15 and ratio >= 0.30 and recs["errors"] == 0
    ceiling = f" (bare view + 1 MGET: {floor['rps'] / probe['rps']:.2f})" if floor else ""
    print(f"ratio to /healthz: {ratio:.2f}{ceiling}  target (p99<=15ms, >=0.30x): "
          f"{'met' if ok else 'NOT met'}  load: {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after", flush=True)  # fmt: skip
