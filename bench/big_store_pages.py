"""Warm latency of a big store's dashboard pages and recommendation answers (issue 18, item 3).

Target for a 5M-event store (200k shoppers, 50k items), 2 cores: warm p95 < 300 ms for the
overview, catalog and shopper pages and for the personal, trending and similar API answers.

Each page is requested through Django's test Client, so the whole middleware stack runs (tenant
from the host, session, membership, rate limits): the dashboard as a signed-in owner of the
store, the API with a `recommend` key. The first request of a page is reported apart as "cold"
(per-process caches and the model load it may pay); the next `repeat` are the warm timings.
Subjects rotate (shoppers: the 3 heaviest, then the most recently seen; items), so a warm
request is mostly not one a previous request filled a cache for. "overview, funnels" is the
overview with its recommendation funnel computed (what one view a minute pays on a busy store);
it is printed but not held to the target.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/big_store_pages.py <schema_name> \
        [--repeat 30] [--subjects 30]

`measure_pages(schema_name, ...)` is what bench/big_store.py calls after building its store.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_P95_MS = 300.0
STAFF_EMAIL = "big-store-pages@bench.invalid"
# The overview with its funnels computed on every request (what one view a minute pays on a
# busy store, apps.dashboard.selectors.FUNNEL_TTL_SECONDS): shown, not held to the target.
DIAGNOSTIC = {"overview, funnels"}


@dataclass
class PageTiming:
    name: str
    cold_ms: float
    # False: a diagnostic row, printed but not held to the target.
    target: bool = True
    warm_ms: list[float] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)

    def pct(self, q: float) -> float:
        ordered = sorted(self.warm_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def line(self) -> str:
        p95 = self.pct(0.95)
        verdict = ("ok" if p95 < TARGET_P95_MS else "SLOW") if self.target else "(not a target)"
        return (
            f"{self.name:<22} cold {self.cold_ms:8.1f} ms | warm p50 {self.pct(0.5):7.1f} "
            f"p95 {p95:7.1f} max {max(self.warm_ms):7.1f} ms (n={len(self.warm_ms)}, "
            f"status {sorted(self.statuses)}) {verdict}"
        )


def _staff_client(tenant, host: str):
    """A test client signed in as an owner of the store (created once, kept)."""
    from django.test import Client

    from apps.users.models import Membership, User

    user = User.objects.filter(email=STAFF_EMAIL).first()
    if user is None:
        user = User.objects.create_user(STAFF_EMAIL, full_name="Bench staff")
    Membership.objects.get_or_create(
        user=user, tenant=tenant, defaults={"role": Membership.Role.OWNER}
    )
    client = Client(HTTP_HOST=host)
    client.force_login(user)
    return client


def _subjects(tenant, count: int) -> tuple[list[str], list[str]]:
    """Shoppers: the store's 3 heaviest (most events: the longest histories) and its most
    recently seen, `count` in all; items: its first `count` visible items. (Finding the
    heaviest reads every event once; it is set-up, not timed.)"""
    from django.db import connection
    from django_tenants.utils import tenant_context

    from apps.catalog.models import Item, Shopper

    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute(
            "SELECT user_id FROM catalog_event WHERE user_id IS NOT NULL "
            "GROUP BY user_id ORDER BY count(*) DESC LIMIT 3"
        )
        shoppers = [row[0] for row in cursor.fetchall()]
        shoppers += [
            user_id
            for user_id in Shopper.objects.filter(last_seen_at__isnull=False)
            .order_by("-last_seen_at")
            .values_list("user_id", flat=True)[:count]
            if user_id not in shoppers
        ][: max(0, count - len(shoppers))]
        items = list(
            Item.objects.filter(is_hidden=False)
            .order_by("id")
            .values_list("item_id", flat=True)[:count]
        )
    return shoppers, items


def measure_pages(
    schema_name: str,
    host: str | None = None,
    *,
    repeat: int = 30,
    subjects: int = 30,
    out=print,
) -> dict[str, PageTiming]:
    """Request each page `1 + repeat` times (one cold, `repeat` warm) and print one line per
    page; returns the timings by page name. `host` defaults to the store's domain. Creates a
    bench owner membership and a `recommend` API key in the store when missing."""
    from django.db import connection
    from django.test import Client
    from django_tenants.utils import tenant_context

    from apps.apikeys.services import api_key_create, api_key_revoke
    from apps.dashboard.selectors import overview_funnels_forget
    from apps.recommendations import serving
    from apps.tenants.models import Tenant
    from apps.tenants.selectors import store_domain

    tenant = Tenant.objects.get(schema_name=schema_name)
    host = host or store_domain(tenant.slug)
    staff = _staff_client(tenant, host)
    with tenant_context(tenant):
        api_key, key = api_key_create(
            name="big-store-pages", scopes=["recommend"], actor_label="bench"
        )
    connection.set_schema_to_public()
    api = Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {key}")
    shoppers, items = _subjects(tenant, subjects)
    if not shoppers or not items:
        raise SystemExit(f"{schema_name}: no shoppers or items to request.")

    def funnels_forgotten(n: int) -> str:
        with tenant_context(tenant):
            overview_funnels_forget(currency=tenant.currency)
        return "/"

    pages = {
        "overview": (staff, lambda n: "/"),
        # The overview once a minute on a busy store: its funnels computed from the data.
        "overview, funnels": (staff, funnels_forgotten),
        "catalog": (staff, lambda n: f"/catalog/?page={1 + n % 5}"),
        "catalog item": (staff, lambda n: f"/catalog/{items[n % len(items)]}/"),
        "shoppers": (staff, lambda n: f"/shoppers/?page={1 + n % 5}"),
        "shopper page": (staff, lambda n: f"/shoppers/{shoppers[n % len(shoppers)]}/"),
        "api personal": (
            api,
            lambda n: f"/api/v1/recommendations/users/{shoppers[n % len(shoppers)]}?k=10",
        ),
        "api trending": (api, lambda n: "/api/v1/recommendations/trending?k=10"),
        "api similar": (
            api,
            lambda n: f"/api/v1/recommendations/items/{items[n % len(items)]}/similar?k=10",
        ),
    }
    out(f"{schema_name} at {host}: {repeat} warm requests a page; load {_load()}")
    # The cold load of the store's model, apart: this process forgets every model and store
    # state it holds, then answers one similar-items request (which loads the active model).
    serving.forget_all()
    started = time.perf_counter()
    response = api.get(f"/api/v1/recommendations/items/{items[0]}/similar?k=10")
    cold_model_ms = (time.perf_counter() - started) * 1000
    connection.set_schema_to_public()
    out(
        f"model cold load (first similar answer of a fresh process state): {cold_model_ms:.0f} ms"
        f" (status {response.status_code}, model {response.json().get('model_version')})"
    )
    results: dict[str, PageTiming] = {}
    for name, (client, path) in pages.items():
        timing = None
        for n in range(repeat + 1):
            url = path(n)
            started = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
            connection.set_schema_to_public()
            if timing is None:
                timing = PageTiming(name, cold_ms=elapsed, target=name not in DIAGNOSTIC)
            else:
                timing.warm_ms.append(elapsed)
            timing.statuses.add(response.status_code)
        results[name] = timing
        out(timing.line())
    with tenant_context(tenant):
        api_key_revoke(api_key=api_key, actor_label="bench")
    connection.set_schema_to_public()
    slow = [t.name for t in results.values() if t.target and t.pct(0.95) >= TARGET_P95_MS]
    out(
        f"warm p95 < {TARGET_P95_MS:.0f} ms: {'met' if not slow else 'NOT met: ' + ', '.join(slow)}"
        f" (median of warm p95s {statistics.median(t.pct(0.95) for t in results.values()):.1f} ms)"
        f"; load {_load()}"
    )
    return results


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("schema_name")
    parser.add_argument("--host", default=None)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--subjects", type=int, default=30)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    # Timings of a production-like process: no debug query log, no debug toolbar.
    os.environ.setdefault("DEBUG", "false")
    import django

    django.setup()
    from django.conf import settings
    from django.test.utils import override_settings

    # DEBUG off wants collected static files (the manifest); plain static URLs time the same.
    plain_static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    with override_settings(STORAGES={**settings.STORAGES, "staticfiles": plain_static}):
        measure_pages(args.schema_name, args.host, repeat=args.repeat, subjects=args.subjects)


if __name__ == "__main__":
    main()
