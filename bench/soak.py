"""Soak a running platform (`make run`) with several stores for N minutes, then say whether any
task failed and whether the analytics add up.

    make run > run.log 2>&1 &            # honcho's output (web, worker, beat) is the log
    .venv/bin/python bench/soak.py --url http://localhost:8000 --minutes 30 --log run.log

Stores are created with the staff commands (`manage.py create_tenant`, `create_api_key`), run in
`--repo` (default: this checkout) the way the README writes them; `manage.py` finds the
embedded services there. Each store then gets a catalog and a history through the API, trains
through the API (its worker), and for the rest of the time serves lists (shopper, similar,
trending) while its shoppers click and buy, carrying the lists' `recommendation_id`, and new
views arrive. At the end it waits for the served-list log to reach PostgreSQL and prints:

- per store: lists served, attributed clicks and purchases sent, events stored, errors, and
  what `GET /api/v1/analytics/summary` reports;
- latency (p50/p95/p99/max) per endpoint kind;
- from the log (only lines written during the soak): tasks succeeded per task name, tasks that
  failed or retried, tracebacks, beat's sends.

Exit status 1 when a task failed, a request failed, or the analytics disagree with what was sent.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.system.client import StoreApi, request  # noqa: E402

ITEMS, SHOPPERS, HISTORY_PER_SHOPPER = 200, 300, 10
FAILURE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback|raised unexpected|\bRetry in\b")
SUCCEEDED = re.compile(r"Task (?P<task>[\w.]+)\[[^\]]+\] succeeded")
SENT = re.compile(r"(?:Sending due task|beat: sending) (?P<entry>\S+)")


@dataclass
class StoreRun:
    slug: str
    api: StoreApi
    lists: int = 0
    clicks: int = 0
    purchases: int = 0
    events: int = 0
    errors: Counter = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    revenue_cents: int = 0


def manage(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [str(repo / ".venv" / "bin" / "python"), "manage.py", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def create_store(repo: Path, base_url: str, slug: str) -> StoreRun:
    manage(
        repo, "create_tenant", "--slug", slug, "--name", f"Soak {slug}",
        "--owner-email", f"owner@{slug}.example.test",
    )  # fmt: skip
    out = manage(
        repo, "create_api_key", "--tenant", slug, "--name", "soak",
        "--scopes", "ingest,recommend,manage",
    )  # fmt: skip
    key = re.search(r"Key \(shown once\): (\S+)", out)
    if key is None:
        raise SystemExit(f"no key in create_api_key's output:\n{out}")
    parts = urlsplit(base_url)
    return StoreRun(slug, StoreApi(f"http://{slug}.{parts.hostname}:{parts.port or 80}", key[1]))


def timed(store: StoreRun, kind: str, method: str, path: str, payload=None, expect=(200,)):
    started = time.perf_counter()
    try:
        response = store.api.call(method, path, payload)
    except OSError as exc:
        store.errors[f"{kind}: {type(exc).__name__}"] += 1
        return None
    store.latencies[kind].append(time.perf_counter() - started)
    if response.status not in expect:
        store.errors[f"{kind}: HTTP {response.status}"] += 1
        return None
    return response.json()


def seed(store: StoreRun, rng: random.Random) -> None:
    items = [
        {
            "item_id": f"i{n:03d}",
            "title": f"Item {n}",
            "categories": [f"c{n % 8}"],
            "price": f"{3 + n % 40}.99",
            "in_stock": True,
        }
        for n in range(ITEMS)
    ]
    timed(store, "items bulk", "POST", "/api/v1/items/bulk", {"items": items})
    now = datetime.now(UTC)
    rows = []
    for user in range(SHOPPERS):
        taste = user % 8
        for k in range(HISTORY_PER_SHOPPER):
            item = (
                rng.choice([n for n in range(taste, ITEMS, 8)])
                if rng.random() < 0.8
                else (rng.randrange(ITEMS))
            )
            rows.append(
                {
                    "event_id": f"seed-{user}-{k}",
                    "user_id": f"s{user:03d}",
                    "item_id": f"i{item:03d}",
                    "type": rng.choices(["view", "add_to_cart", "purchase"], [7, 2, 1])[0],
                    "timestamp": (
                        now - timedelta(days=30, minutes=-(user * 97 + k * 61) % 40000)
                    ).isoformat(),
                }
            )
    body = timed(store, "events bulk", "POST", "/api/v1/events/bulk", {"events": rows}, (202,))
    if body:
        store.events += body["accepted"]


def train(store: StoreRun, timeout: float) -> str:
    started = timed(
        store, "train", "POST", "/api/v1/recommendations/models/train", {}, expect=(202,)
    )
    if started is None:
        return "not started"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        versions = timed(store, "models", "GET", "/api/v1/recommendations/models") or {}
        for version in versions.get("results", []):
            if version["number"] == started["number"] and version["finished_at"]:
                return version["status"]
        time.sleep(1)
    return "timed out"


def traffic(store: StoreRun, rng: random.Random, deadline: float, rate: float) -> None:
    """Until `deadline`: about `rate` list requests a second, each list clicked with chance
    0.3 and bought after a click with chance 0.3; new views mixed in; events sent each second."""
    pending: list[dict] = []
    last_flush = time.monotonic()
    n = 0
    while time.monotonic() < deadline:
        n += 1
        user = f"s{rng.randrange(SHOPPERS + 50):03d}"  # some shoppers are new
        roll = rng.random()
        if roll < 0.7:
            kind, path = "user list", f"/api/v1/recommendations/users/{user}?k=10"
        elif roll < 0.9:
            kind, path = (
                "similar",
                f"/api/v1/recommendations/items/i{rng.randrange(ITEMS):03d}/similar?k=10",
            )
        else:
            kind, path = "trending", "/api/v1/recommendations/trending?k=10"
        body = timed(store, kind, "GET", path)
        at = datetime.now(UTC).isoformat()
        if body is not None:
            store.lists += 1
            items = [entry["item_id"] for entry in body["items"]]
            if kind == "user list" and items and rng.random() < 0.3:
                item = rng.choice(items)
                rec = body["recommendation_id"]
                pending.append(_event(n, "click", user, item, at, rec))
                store.clicks += 1
                if rng.random() < 0.3:
                    pending.append(_event(n, "purchase", user, item, at, rec))
                    store.purchases += 1
        pending.append(_event(n, "view", user, f"i{rng.randrange(ITEMS):03d}", at, None))
        if time.monotonic() - last_flush >= 1.0:
            _flush(store, pending)
            pending, last_flush = [], time.monotonic()
        time.sleep(max(0.0, rng.expovariate(rate)))
    _flush(store, pending)


def _event(n: int, kind: str, user: str, item: str, at: str, rec: str | None) -> dict:
    row = {
        "event_id": f"soak-{kind}-{n}-{secrets.token_hex(4)}",
        "user_id": user,
        "item_id": item,
        "type": kind,
        "timestamp": at,
    }
    if rec:
        row["recommendation_id"] = rec
    return row


def _flush(store: StoreRun, rows: list[dict]) -> None:
    if not rows:
        return
    body = timed(store, "events bulk", "POST", "/api/v1/events/bulk", {"events": rows}, (202,))
    if body:
        store.events += body["accepted"]
        if body["errors"]:
            store.errors["events rejected"] += len(body["errors"])


def read_log(path: Path | None, offset: int) -> dict:
    if path is None or not path.exists():
        return {"available": False}
    with open(path, "rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    succeeded, sent = Counter(), Counter()
    failures = []
    for line in text.splitlines():
        if match := SUCCEEDED.search(line):
            succeeded[match["task"]] += 1
        if match := SENT.search(line):
            sent[match["entry"].split("@")[0]] += 1
        if FAILURE.search(line):
            failures.append(line.strip())
    return {"available": True, "succeeded": succeeded, "sent": sent, "failures": failures}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://localhost:8000", help="the platform's URL")
    parser.add_argument("--minutes", type=float, default=30.0, help="of traffic, after setup")
    parser.add_argument("--stores", type=int, default=5)
    parser.add_argument("--rate", type=float, default=4.0, help="list requests/s per store")
    parser.add_argument("--repo", type=Path, default=ROOT, help="checkout running the platform")
    parser.add_argument("--log", type=Path, default=None, help="`make run`'s output (honcho)")
    parser.add_argument(
        "--settle", type=float, default=45.0, help="seconds to wait for the served-list log"
    )
    args = parser.parse_args()

    ready = request("GET", args.url.rstrip("/") + "/readyz")
    if ready.status != 200:
        raise SystemExit(f"{args.url}/readyz answered {ready.status}: {ready.text}")
    log_offset = args.log.stat().st_size if args.log and args.log.exists() else 0
    began = time.monotonic()
    tag = secrets.token_hex(2)
    stores = [create_store(args.repo, args.url, f"soak{tag}{n}") for n in range(1, args.stores + 1)]
    print(f"{len(stores)} stores created in {time.monotonic() - began:.1f}s: "
          + ", ".join(s.slug for s in stores))  # fmt: skip
    rngs = {store.slug: random.Random(store.slug) for store in stores}
    setup = [threading.Thread(target=seed, args=(s, rngs[s.slug])) for s in stores]
    for thread in setup:
        thread.start()
    for thread in setup:
        thread.join()
    trained = {}
    started = time.monotonic()
    threads = [
        threading.Thread(target=lambda s=s: trained.__setitem__(s.slug, train(s, 600)))
        for s in stores
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"trained in {time.monotonic() - started:.1f}s: {trained}")

    deadline = time.monotonic() + args.minutes * 60  # the traffic itself lasts --minutes
    threads = [
        threading.Thread(target=traffic, args=(s, rngs[s.slug], deadline, args.rate))
        for s in stores
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"traffic done after {(time.monotonic() - began) / 60:.1f} min; "
          f"waiting up to {args.settle:.0f}s for analytics")  # fmt: skip

    summaries: dict[str, dict | str] = {}
    settle_until = time.monotonic() + args.settle
    while True:
        for store in stores:
            response = store.api.call("GET", "/api/v1/analytics/summary?days=7")
            summaries[store.slug] = (
                response.json() if response.status == 200 else f"HTTP {response.status}"
            )
        caught_up = all(
            isinstance(summaries[s.slug], dict) and summaries[s.slug]["lists_served"] >= s.lists
            for s in stores
        )
        if caught_up or time.monotonic() > settle_until:
            break
        time.sleep(3)
    log = read_log(args.log, log_offset)
    return report(args, stores, trained, summaries, log, time.monotonic() - began)


def report(args, stores, trained, summaries, log, seconds: float) -> int:
    problems = []
    print()
    print(f"== soak: {len(stores)} stores, {seconds / 60:.1f} min against {args.url}")
    print(f"{'store':<12} {'lists':>7} {'clicks':>7} {'buys':>6} {'events':>8} {'errors':>6}  "
          "analytics (lists/clicks/conversions, ctr)")  # fmt: skip
    for store in stores:
        summary = summaries.get(store.slug)
        if isinstance(summary, dict):
            seen = (
                f"{summary['lists_served']}/{summary['clicks']}/{summary['conversions']}, "
                f"{summary['ctr']}"
            )
            if summary["lists_served"] != store.lists:
                problems.append(f"{store.slug}: {store.lists} lists served, analytics says "
                                f"{summary['lists_served']}")  # fmt: skip
            if summary["clicks"] > store.clicks or summary["conversions"] > store.purchases:
                problems.append(f"{store.slug}: analytics counts more than was sent")
        else:
            seen = str(summary)
            problems.append(f"{store.slug}: analytics summary {summary}")
        errors = sum(store.errors.values())
        print(f"{store.slug:<12} {store.lists:>7} {store.clicks:>7} {store.purchases:>6} "
              f"{store.events:>8} {errors:>6}  {seen}")  # fmt: skip
        for what, count in store.errors.items():
            problems.append(f"{store.slug}: {count} x {what}")
        if trained.get(store.slug) not in ("active", "ready"):
            problems.append(f"{store.slug}: training {trained.get(store.slug)}")
    print()
    print(f"{'latency (ms)':<14} {'n':>7} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}")
    merged: dict[str, list[float]] = defaultdict(list)
    for store in stores:
        for kind, values in store.latencies.items():
            merged[kind].extend(values)
    for kind, values in sorted(merged.items()):
        print(
            f"{kind:<14} {len(values):>7} {1000 * statistics.median(values):>7.1f} "
            f"{1000 * percentile(values, 0.95):>7.1f} {1000 * percentile(values, 0.99):>7.1f} "
            f"{1000 * max(values):>7.1f}"
        )
    print()
    if not log["available"]:
        print("log: not read (pass --log with `make run`'s output to check the tasks)")
    else:
        print(
            "tasks succeeded: " + ", ".join(f"{t} {c}" for t, c in sorted(log["succeeded"].items()))
        )
        print("beat sent:       " + ", ".join(f"{e} {c}" for e, c in sorted(log["sent"].items())))
        print(f"failed/retried tasks, errors, tracebacks: {len(log['failures'])}")
        for line in log["failures"][:20]:
            print(f"  {line[:300]}")
        if log["failures"]:
            problems.append(f"{len(log['failures'])} failure lines in the log")
    print()
    if problems:
        print("RESULT: FAILED")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("RESULT: OK (no failed task, no failed request, analytics match what was sent)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
