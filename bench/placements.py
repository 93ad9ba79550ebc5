"""The cost of a placement's rules on the serving path: `apps.merchandising.ordering.apply` on a
realistic list (wall and thread CPU time: the machine may be busy), and (with REDIS_URL set)
the MGET a placement request reads (placements version, catalog token, last shown list; on the
endpoint it rides in the request's existing Redis round trip).

Data shaped like a store: 10,000 items in 60 categories (Zipf-sized), 300 brands, prices
log-normal around 40, 10% on sale, 3% out of stock, 1% hidden; the candidate list is a
model's top-100 (scores decreasing, items drawn by popularity); the fallback is the store's
popularity order of every item. Facts come from a dict like the per-process cache
(apps/merchandising/facts.py: StoreFacts.lookup), warmed, as in steady state.

Placements measured (k = 20):
  none       no rules (the cost floor: hard filters only)
  three      price_max filter + on-sale boost x1.5 + max 3 per category   (the issue's case)
  full       three + brand bury x0.5 + 2 pins + max 2 per brand + rotation (list just shown)
  narrow     a 2-category filter that leaves few candidates: top-up from popularity

    .venv/bin/python bench/placements.py [--runs 20000] [--seed 0]

`--http` also measures the whole endpoint in-process (Django test client, no server, so the
numbers are the request's CPU path plus its Redis / PostgreSQL round trips): a throw-away
store `bench-merch-<random>` with the same catalog (no model: the personal list is the
store's popularity, cached per process), `GET /api/v1/recommendations/users/{id}?k=20`
plain and with each placement, random shoppers. Needs DATABASE_URL / REDIS_URL of a platform
`manage.py setup_platform` can prepare; the store is dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.merchandising.ordering import Verdicts, apply  # noqa: E402
from apps.merchandising.rules import ItemFacts  # noqa: E402
from apps.merchandising.rules_json import parse_rules  # noqa: E402

N_ITEMS = 10_000
N_CATEGORIES = 60
N_BRANDS = 300
LIST = 100
K = 20


def build_catalog(rng: random.Random) -> tuple[dict[str, ItemFacts], list[str]]:
    weights = [1 / (n + 1) for n in range(N_CATEGORIES)]
    categories = [f"cat-{n}" for n in range(N_CATEGORIES)]
    facts = {}
    for n in range(N_ITEMS):
        attributes: dict[str, object] = {"brand": f"brand-{int(rng.paretovariate(1.2)) % N_BRANDS}"}
        if rng.random() < 0.10:
            attributes["on_sale"] = True
        facts[f"sku-{n}"] = ItemFacts(
            categories=tuple(rng.choices(categories, weights, k=1 + (rng.random() < 0.3))),
            price=round(rng.lognormvariate(3.7, 0.8), 2),
            in_stock=rng.random() > 0.03,
            hidden=rng.random() < 0.01,
            attributes=attributes,
        )
    popularity = sorted(facts, key=lambda item: -rng.paretovariate(1.1))
    return facts, popularity


def lookup_of(facts: dict[str, ItemFacts]):
    """What StoreFacts.lookup does once warm: a membership scan, then a dict of the known."""

    def lookup(ids):
        missing = [item for item in ids if item not in facts]
        assert not missing
        out = {}
        for item in ids:
            found = facts.get(item)
            if found is not None:
                out[item] = found
        return out

    return lookup


PLACEMENTS = {
    "none": {},
    "three": {
        "filters": {"price_max": 150},
        "boosts": [{"when": {"attributes": {"on_sale": True}}, "weight": 1.5, "name": "sale"}],
        "diversity": {"max_per_category": 3},
    },
    "full": {
        "filters": {"price_max": 150},
        "boosts": [
            {"when": {"attributes": {"on_sale": True}}, "weight": 1.5, "name": "sale"},
            {"when": {"attributes": {"brand": "brand-1"}}, "weight": 0.5, "name": "bury"},
        ],
        "pins": [{"item_id": "sku-5", "position": 1}, {"item_id": "sku-77", "position": 4}],
        "diversity": {"max_per_category": 3, "max_per_attribute": {"brand": 2}},
        "rotation": {"window_seconds": 3600},
    },
    "narrow": {"filters": {"categories": ["cat-40", "cat-41"]}},
}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_rules(runs: int, seed: int) -> None:
    rng = random.Random(seed)
    facts, popularity = build_catalog(rng)
    lookup = lookup_of(facts)
    top = popularity[:2000]
    lists = []
    for _ in range(200):
        items = rng.sample(top, LIST)
        lists.append([(item, round(1.0 - n / LIST, 6)) for n, item in enumerate(items)])
    print(
        f"ordering.apply, k={K}, candidates={LIST}, catalog={N_ITEMS} items; {runs} runs each "
        f"(one thread, {os.cpu_count()} cores on the machine, load avg "
        f"{os.getloadavg()[0]:.1f})"
    )
    print(f"{'placement':<10} {'p50 µs':>8} {'p99 µs':>8} {'mean µs':>8} {'cpu p50':>8}  items")
    for name, data in PLACEMENTS.items():
        rules = parse_rules(data)
        # As serving does: per-item verdicts kept with the store's facts across requests.
        verdicts = Verdicts()
        samples = []
        cpu = []
        sizes = []
        for n in range(runs):
            candidates = lists[n % len(lists)]
            last = [item for item, _ in candidates[:K]] if rules.rotation_seconds else None
            started, started_cpu = time.perf_counter(), time.thread_time()
            placed = apply(
                rules,
                candidates,
                k=K,
                facts=lookup,
                fallback=_pairs(popularity),
                last_shown=last,
                verdicts=verdicts,
            )
            samples.append((time.perf_counter() - started) * 1e6)
            cpu.append((time.thread_time() - started_cpu) * 1e6)
            sizes.append(len(placed))
        print(
            f"{name:<10} {percentile(samples, 0.5):>8.1f} {percentile(samples, 0.99):>8.1f} "
            f"{statistics.fmean(samples):>8.1f} {percentile(cpu, 0.5):>8.1f}  "
            f"{min(sizes)}-{max(sizes)}"
        )


def _pairs(order: list[str]):
    for item in order:
        yield item, 0.0


def bench_redis(runs: int) -> None:
    url = os.environ.get("REDIS_URL")
    if not url:
        print("REDIS_URL unset: the extra MGET is not measured")
        return
    import redis

    client = redis.Redis.from_url(url)
    keys = [f"bench-placements:{n}" for n in range(3)]
    client.set(keys[0], 7)
    samples = []
    for _ in range(min(runs, 5000)):
        started = time.perf_counter()
        client.mget(keys)
        samples.append((time.perf_counter() - started) * 1e6)
    client.delete(*keys)
    print(
        f"extra MGET of 3 keys (placements version, catalog token, last shown): "
        f"p50 {percentile(samples, 0.5):.1f} µs, p99 {percentile(samples, 0.99):.1f} µs"
    )


def bench_http(requests: int, seed: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ["API_KEY_RATE_LIMIT"] = ""  # the default 300/s per key would throttle the loop
    import secrets
    from datetime import timedelta
    from decimal import Decimal

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from apps.apikeys.services import api_key_create
    from apps.catalog.models import Event, Item
    from apps.core.cache import redis_client
    from apps.merchandising import services as merch_services
    from apps.tenants.models import Tenant
    from apps.tenants.selectors import store_domain
    from apps.tenants.services import tenant_create

    call_command("setup_platform", verbosity=0)
    rng = random.Random(seed)
    facts, popularity = build_catalog(rng)
    tenant = tenant_create(slug=f"bench-merch-{secrets.token_hex(3)}", name="Bench merch")
    try:
        now = timezone.now()
        with tenant_context(tenant):
            Item.objects.bulk_create(
                Item(
                    item_id=item,
                    title=item,
                    categories=list(f.categories),
                    price=Decimal(str(f.price)),
                    in_stock=f.in_stock,
                    is_hidden=f.hidden,
                    attributes=dict(f.attributes),
                )
                for item, f in facts.items()
            )
            events = []
            for n in range(40_000):
                item = popularity[min(int(rng.paretovariate(0.8)) - 1, N_ITEMS - 1)]
                events.append(
                    Event(
                        user_id=f"shopper-{rng.randrange(2000)}",
                        item_id=item,
                        type="view",
                        timestamp=now - timedelta(minutes=n),
                    )
                )
            Event.objects.bulk_create(events, batch_size=5000)
            for name in ("three", "full", "narrow"):
                merch_services.placement_create(
                    name=name, scenario="personal", rules=PLACEMENTS[name]
                )
            _, key = api_key_create(name="bench", scopes=["recommend"])
        connection.set_schema_to_public()
        client = Client(HTTP_HOST=store_domain(tenant.slug), HTTP_AUTHORIZATION=f"Bearer {key}")
        print(
            f"\nGET /api/v1/recommendations/users/{{id}}?k=20 in-process, {requests} requests "
            f"each, random of 2,000 shoppers (load avg {os.getloadavg()[0]:.1f})"
        )
        print(f"{'placement':<10} {'p50 µs':>8} {'p99 µs':>8}  (interleaved, same shoppers)")
        names = ("none", "three", "full", "narrow")
        queries = {name: "" if name == "none" else f"&placement={name}" for name in names}
        for query in queries.values():
            for _ in range(50):  # warm the per-process caches
                client.get(f"/api/v1/recommendations/users/warm?k=20{query}")
        samples: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(requests):
            shopper = f"shopper-{rng.randrange(2000)}"
            for name in names:
                path = f"/api/v1/recommendations/users/{shopper}?k=20{queries[name]}"
                started = time.perf_counter()
                response = client.get(path)
                samples[name].append((time.perf_counter() - started) * 1e6)
                assert response.status_code == 200, response.content
        for name in names:
            print(
                f"{name:<10} {percentile(samples[name], 0.5):>8.0f} "
                f"{percentile(samples[name], 0.99):>8.0f}"
            )
    finally:
        connection.set_schema_to_public()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
        Tenant.objects.filter(pk=tenant.pk).delete()
        client_redis = redis_client()
        for key in client_redis.scan_iter(match=f"{tenant.schema_name}:*", count=1000):
            client_redis.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--http", action="store_true", help="also the endpoint, in-process")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    bench_rules(args.runs, args.seed)
    bench_redis(args.runs)
    if args.http:
        bench_http(args.requests, args.seed)


if __name__ == "__main__":
    main()
