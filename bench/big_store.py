"""A big store (5M or 20M events) built in minutes, then trained the way the training task does.

    DATABASE_URL=postgres://…/ss_bench REDIS_URL=redis://…/11 \\
        .venv/bin/python bench/big_store.py [--events 5000000|20000000] [--keep] [--seed 7]

Targets (issue 18, 2 cores): a 20M-event store trains in < 10 minutes within 4 GB peak RSS,
reading from PostgreSQL, fitting, evaluating and saving included.

The store is provisioned the normal way (`tenant_create`, enterprise plan), then filled with
COPY: integer codes into an unlogged staging table, expanded into `catalog_event` by one
INSERT … SELECT while the event indexes are dropped (recreated after, from their own
definitions), items by COPY, shoppers derived from their events. The training runs in a child
process (this script with --train-child: `model_version_start` + `model_version_train`, the
task's service path; precompute is its own task, not counted), so its peak RSS (getrusage of
that child) is the training's own. Then the artifact's size on disk and the cold load of the
model in a fresh process are printed. Without --keep the store is dropped at the end.

How the data matches a real shop's (shape, not any one shop's numbers):
- items: 50k at 5M events (events / 100 beyond that, 200k at 20M) in 400 categories;
  popularity is a power law (Zipf, exponent 1.05 over the popularity rank), prices log-normal
  around 30, 3 % out of stock;
- shoppers: events / 25 (200k at 5M, 800k at 20M); activity is long-tailed (Pareto 1.3:
  most shoppers come a few times, a few hundred are heavy users); each has a favourite and a
  second category that 75 % of their browsing stays in (the signal a recommender can learn);
- the funnel: views >> add_to_cart > purchase. 5 % of browsing events are clicks, 8 % of
  views put the item in the cart minutes later, 40 % of carts are bought within half an hour;
  a purchase belongs to the shopper's order of that day (order_id, item_price, value = price);
  20 % of purchases are rated (1-5, skewed to 4-5) days later;
- time: one year ending now, growing 60 % over the year, weekends 25 % busier, a November /
  December peak, and an evening-heavy hour-of-day curve; events carry the shopper's session of
  the day.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("DEBUG", "0")

import django  # noqa: E402

django.setup()

import orjson  # noqa: E402
from django.db import connection  # noqa: E402

from apps.billing.services import plans_seed, subscription_plan_assign  # noqa: E402
from apps.core.pii import encrypt  # noqa: E402
from apps.tenants.models import Tenant  # noqa: E402
from apps.tenants.services import tenant_create  # noqa: E402

CATEGORIES = 400
DAY = 86_400
# Event type codes of the staging table.
VIEW, CLICK, CART, PURCHASE, RATING = range(5)
TYPE_NAMES = "ARRAY['view','click','add_to_cart','purchase','rating']"
# Hour-of-day weights: quiet nights, a lunch bump, an evening peak.
HOURS = np.array(
    [2, 1, 1, 1, 1, 2, 3, 5, 6, 7, 7, 8, 9, 8, 7, 7, 8, 9, 11, 13, 14, 12, 8, 4], dtype=float
)


class _Shape:
    """The store's fixed parts: items, shoppers and their tastes, the calendar."""

    def __init__(self, events: int, rng: np.random.Generator, end: int) -> None:
        self.n_items = max(50_000, events // 100)
        self.n_users = max(200_000, events // 25)
        self.end = end
        self.start = end - 365 * DAY
        # Items: category, price, popularity (power law over a random rank).
        self.item_category = rng.integers(0, CATEGORIES, self.n_items)
        self.price = np.round(rng.lognormal(np.log(30), 0.8, self.n_items), 2).clip(0.5, 5000)
        rank = rng.permutation(self.n_items) + 1
        weight = 1.0 / (rank + 5.0) ** 1.05
        # Global draw: items by popularity. Category draw: items sorted by category, so one
        # category's items are a contiguous range of one cumulative array.
        self.global_cdf = np.cumsum(weight) / weight.sum()
        self.by_category = np.argsort(self.item_category, kind="stable")
        cat_cum = np.cumsum(weight[self.by_category])
        self.cat_cdf = cat_cum / cat_cum[-1]
        bounds = np.searchsorted(self.item_category[self.by_category], np.arange(CATEGORIES + 1))
        padded = np.concatenate([[0.0], self.cat_cdf])
        self.cat_low = padded[bounds[:-1]]
        self.cat_high = padded[bounds[1:]]
        # Shoppers: long-tailed activity, two favourite categories (popular ones more often).
        activity = rng.pareto(1.3, self.n_users) + 1.0
        self.user_cdf = np.cumsum(activity) / activity.sum()
        cat_weight = 1.0 / np.arange(1, CATEGORIES + 1) ** 0.7
        cat_p = cat_weight / cat_weight.sum()
        self.user_cat = rng.choice(CATEGORIES, size=(self.n_users, 2), p=cat_p)
        # Calendar: growth, weekends, the end-of-year peak.
        days = np.arange(365)
        dates = self.start + days * DAY
        weekday = ((dates // DAY) + 3) % 7  # 1970-01-01 was a Thursday; 5, 6 = Sat, Sun
        month = np.array([datetime.fromtimestamp(d, tz=UTC).month for d in dates])
        day_weight = (1.0 + 0.6 * days / 365) * np.where(weekday >= 5, 1.25, 1.0)
        day_weight *= np.where(month == 11, 1.4, 1.0) * np.where(month == 12, 1.3, 1.0)
        self.day_cdf = np.cumsum(day_weight) / day_weight.sum()
        self.hour_cdf = np.cumsum(HOURS) / HOURS.sum()

    def items_for(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = len(users)
        items = np.searchsorted(self.global_cdf, rng.random(n))
        own = rng.random(n) < 0.75
        which = (rng.random(n) < 0.3).astype(np.int64)
        cats = self.user_cat[users[own], which[own]]
        low, high = self.cat_low[cats], self.cat_high[cats]
        pos = np.searchsorted(self.cat_cdf, low + rng.random(len(cats)) * (high - low))
        items[own] = self.by_category[np.minimum(pos, self.n_items - 1)]
        return np.minimum(items, self.n_items - 1)


def _chunk(shape: _Shape, base: int, rng: np.random.Generator, order_base: int) -> np.ndarray:
    """Events grown from `base` browsing events: (user, item, type, value, ts, order) rows."""
    users = np.searchsorted(shape.user_cdf, rng.random(base)).astype(np.int64)
    users = np.minimum(users, shape.n_users - 1)
    items = shape.items_for(users, rng)
    day = np.searchsorted(shape.day_cdf, rng.random(base))
    hour = np.searchsorted(shape.hour_cdf, rng.random(base))
    ts = shape.start + day * DAY + hour * 3600 + rng.integers(0, 3600, base)
    kinds = np.where(rng.random(base) < 0.05, CLICK, VIEW)
    carted = np.flatnonzero((kinds == VIEW) & (rng.random(base) < 0.08))
    cart_ts = ts[carted] + rng.integers(30, 600, len(carted))
    bought = carted[rng.random(len(carted)) < 0.4]
    buy_ts = ts[bought] + rng.integers(600, 2400, len(bought))
    # One order per shopper and day; an item bought twice the same day is one order line.
    buy_day = (buy_ts - shape.start) // DAY
    keys = (users[bought] * 1000 + buy_day) * shape.n_items + items[bought]
    _, keep = np.unique(keys, return_index=True)
    bought, buy_ts, buy_day = bought[keep], buy_ts[keep], buy_day[keep]
    _, order_codes = np.unique(users[bought] * 1000 + buy_day, return_inverse=True)
    rated = rng.random(len(bought)) < 0.2
    rate_ts = buy_ts[rated] + rng.integers(DAY, 14 * DAY, int(rated.sum()))
    stars = rng.choice([1, 2, 3, 4, 5], size=int(rated.sum()), p=[0.05, 0.07, 0.15, 0.33, 0.4])
    parts = [
        (users, items, kinds, np.full(base, np.nan), ts, np.full(base, -1)),
        (
            users[carted],
            items[carted],
            np.full(len(carted), CART),
            np.full(len(carted), np.nan),
            cart_ts,
            np.full(len(carted), -1),
        ),
        (
            users[bought],
            items[bought],
            np.full(len(bought), PURCHASE),
            shape.price[items[bought]],
            buy_ts,
            order_base + order_codes,
        ),
        (
            users[bought][rated],
            items[bought][rated],
            np.full(len(stars), RATING),
            stars.astype(float),
            rate_ts,
            np.full(len(stars), -1),
        ),
    ]
    columns = [np.concatenate([p[c] for p in parts]) for c in range(6)]
    columns[4] = np.minimum(columns[4], shape.end)
    return columns


def _copy_rows(cursor, table_sql: str, columns: list[np.ndarray]) -> None:
    """COPY integer/float columns as text, 200k rows a write."""
    n = len(columns[0])
    step = 200_000
    with cursor.copy(f"COPY {table_sql} FROM STDIN") as copy:
        for lo in range(0, n, step):
            parts = []
            for col in columns:
                part = col[lo : lo + step]
                if part.dtype.kind == "f":
                    text = np.where(np.isnan(part), "\\N", np.char.mod("%.2f", part))
                else:
                    text = part.astype(str)
                parts.append(text)
            buf = io.StringIO()
            for row in zip(*parts, strict=True):
                buf.write("\t".join(row))
                buf.write("\n")
            copy.write(buf.getvalue())


def build_big_store(events: int, schema_name: str, seed: int) -> Tenant:
    """Provision the store `schema_name` (a slug: letters, digits, dashes; the schema is
    `store_<slug>`) and fill it with about `events` events (items, shoppers, orders) shaped as
    the module docstring says. Deterministic for a (events, seed). Returns the tenant. Takes a
    couple of minutes at 5M events on 2 cores; raises if the store already exists."""
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    plans_seed()
    tenant = tenant_create(slug=schema_name, name=f"Big store {events:,}")
    subscription_plan_assign(tenant=tenant, plan_code="enterprise", actor_label="bench")
    schema = tenant.schema_name
    end = int(time.time()) // 3600 * 3600
    shape = _Shape(events, rng, end)
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        cursor.execute(f'SET search_path TO "{schema}", public')
        cursor.execute("SET maintenance_work_mem = '512MB'")
        created = end - 400 * DAY + rng.integers(0, 30 * DAY, shape.n_items)
        cursor.execute(
            "CREATE UNLOGGED TABLE bench_item (code int, cat int, price numeric, stock bool, "
            "created bigint)"
        )
        _copy_rows(
            cursor,
            "bench_item",
            [
                np.arange(shape.n_items),
                shape.item_category,
                shape.price,
                (rng.random(shape.n_items) > 0.03).astype(int),
                created,
            ],
        )
        cursor.execute(
            "INSERT INTO catalog_item (item_id, title, description, categories, price, in_stock,"
            " attributes, is_hidden, created_at, updated_at) SELECT 'sku-' || lpad(code::text, 6,"
            " '0'), 'Product ' || code || ' of category ' || cat, 'A product of category ' || cat"
            " || ', for the big-store benchmark.', ARRAY['category-' || cat], price, stock, '{}',"
            " false, to_timestamp(created), to_timestamp(created) FROM bench_item ORDER BY code"
        )
        cursor.execute("DROP TABLE bench_item")
        # Event indexes are rebuilt once after the load rather than maintained row by row.
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = "
            "'catalog_event' AND indexname NOT LIKE '%%pkey'",
            [schema],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{schema}"."{name}"')
        cursor.execute(
            "CREATE UNLOGGED TABLE bench_event (u int, i int, t smallint, v float8, ts bigint, "
            "o int)"
        )
        base = int(events / 1.1184)
        step = 1_000_000
        order_base = 0
        for lo in range(0, base, step):
            columns = _chunk(shape, min(step, base - lo), rng, order_base)
            order_base = int(columns[5].max()) + 1 if (columns[5] >= 0).any() else order_base
            _copy_rows(cursor, "bench_event (u, i, t, v, ts, o)", columns)
        cursor.execute(
            "INSERT INTO catalog_event (user_id, item_id, type, value, timestamp, item_price, "
            "session_id, order_id, received_at) SELECT 'shopper-' || e.u, 'sku-' || "
            f"lpad(e.i::text, 6, '0'), ({TYPE_NAMES})[e.t + 1], e.v, to_timestamp(e.ts), "
            f"CASE WHEN e.t = {PURCHASE} THEN e.v END, 's-' || e.u || '-' || (e.ts / 86400), "
            "CASE WHEN e.o >= 0 THEN 'order-' || e.o END, to_timestamp(e.ts + 2) "
            "FROM bench_event e ORDER BY e.ts"
        )
        cursor.execute("DROP TABLE bench_event")
        for _, definition in indexes:
            cursor.execute(definition)
        cursor.execute(
            "INSERT INTO catalog_shopper (user_id, attributes, first_seen_at, last_seen_at, "
            "created_at, updated_at) SELECT user_id, %s, min(timestamp), max(timestamp), "
            "min(timestamp), max(timestamp) FROM catalog_event GROUP BY user_id",
            [encrypt(orjson.dumps({}))],
        )
        cursor.execute("SELECT count(*) FROM catalog_event")
        stored = cursor.fetchone()[0]
    with connection.cursor() as django_cursor:
        for table in ("catalog_event", "catalog_item", "catalog_shopper"):
            django_cursor.execute(f'VACUUM ANALYZE "{schema}".{table}')
        django_cursor.execute("SET search_path TO public")
    print(
        f"built {schema}: {stored:,} events, {shape.n_items:,} items, {shape.n_users:,} shoppers "
        f"in {time.perf_counter() - started:.0f}s",
        flush=True,
    )
    return tenant


def store_drop(tenant: Tenant) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
    tenant.delete()


def _train_child(slug: str) -> None:
    """In the child: one training of the store through the task's services."""
    import resource

    from django_tenants.utils import tenant_context

    from apps.recommendations import services
    from apps.recommendations.training import ProgressPublisher

    # Where the memory goes: the process's peak so far at each progress report of the stages.
    stages: dict[str, float] = {}
    send = ProgressPublisher.send

    def send_and_note(self, payload: dict) -> None:
        if payload.get("stage"):
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            stages.setdefault(payload["stage"], round(peak, 2))
        send(self, payload)

    ProgressPublisher.send = send_and_note
    tenant = Tenant.objects.get(slug=slug)
    with tenant_context(tenant):
        version = services.model_version_start(
            actor_label="bench:big_store", dispatch=False, plan_limited=False
        )
        version = services.model_version_train(version_id=version.pk, precompute="none")
    print(
        orjson.dumps(
            {
                "status": version.status,
                "error": version.error,
                "artifact": version.artifact_path,
                "counts": version.counts,
                "timings": (version.metrics or {}).get("timings"),
                "final": (version.metrics or {}).get("final"),
                "popularity": (version.metrics or {}).get("popularity"),
                "recent_window": bool((version.metrics or {}).get("recent_window")),
                "peak_gib_when_stage_started": stages,
            }
        ).decode(),
        flush=True,
    )


def _load_child(artifact: str) -> None:
    """In the child: cold load of the artifact as serving does; seconds and RSS after."""
    import resource

    from apps.recommendations.model_store import artifact_dir
    from ml.model import RecommenderModel

    started = time.perf_counter()
    model = RecommenderModel.load(artifact_dir(artifact))
    seconds = time.perf_counter() - started
    rss = _rss_now()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(orjson.dumps({"seconds": seconds, "rss": rss, "peak": peak}).decode(), flush=True)
    del model


def _rss_now() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _child(args: list[str]) -> tuple[dict, float, int]:
    """Run this script in a child process; (its JSON answer, seconds, peak RSS bytes)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, env=os.environ.copy()
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        sys.exit(f"child {args} failed ({status}): {out.decode()[-2000:]}")
    answer = orjson.loads(out.decode().strip().splitlines()[-1])
    return answer, seconds, usage.ru_maxrss * 1024


def _disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--slug", default=None, help="default big-<events>")
    parser.add_argument("--keep", action="store_true", help="keep the store (reused next run)")
    parser.add_argument("--train-child", help=argparse.SUPPRESS)
    parser.add_argument("--load-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_child:
        return _train_child(args.train_child)
    if args.load_child:
        return _load_child(args.load_child)

    from apps.recommendations.model_store import artifact_dir

    slug = args.slug or f"big-{args.events // 1_000_000}m"
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        tenant = build_big_store(args.events, slug, args.seed)
    else:
        print(f"reusing store {slug}", flush=True)
    try:
        print(f"load average before training: {os.getloadavg()}", flush=True)
        answer, seconds, peak = _child(["--train-child", slug])
        counts = answer["counts"] or {}
        print(
            f"training: {answer['status']} in {seconds:.0f}s (target < 600 s at 20M), peak RSS "
            f"{peak / 2**30:.2f} GiB (target < 4 GiB); {counts.get('events', 0):,} events, "
            f"{counts.get('shoppers', 0):,} shoppers, {counts.get('items', 0):,} items; "
            f"load average after: {os.getloadavg()}",
            flush=True,
        )
        if answer["error"]:
            print(f"  error: {answer['error']}")
        print(f"  stage seconds: {answer['timings']}")
        print(f"  peak GiB so far when each stage started: {answer['peak_gib_when_stage_started']}")
        print(f"  compared with the active model on the recent window: {answer['recent_window']}")
        final, popular = answer["final"] or {}, answer["popularity"] or {}
        print(
            f"  final {final.get('strategy')} ndcg@10 {final.get('ndcg@10')}, popularity "
            f"{popular.get('ndcg@10')}"
        )
        if answer["artifact"]:
            size = _disk_bytes(artifact_dir(answer["artifact"]))
            loaded, _, load_peak = _child(["--load-child", answer["artifact"]])
            print(
                f"artifact: {size / 2**20:.0f} MiB on disk; cold load in a fresh process "
                f"{loaded['seconds']:.2f}s, RSS after load {loaded['rss'] / 2**20:.0f} MiB "
                f"(process peak {load_peak / 2**20:.0f} MiB, Django included)",
                flush=True,
            )
    finally:
        if not args.keep:
            store_drop(tenant)
            print(f"dropped {slug}")


if __name__ == "__main__":
    main()
