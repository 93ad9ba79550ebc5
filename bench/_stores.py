"""Many empty stores for the scale benchmarks (bench/idle.py, bench/migrate_stores.py).

Stores are provisioned the way sign-up does (`tenant_create`: the template's recorded SQL
replayed into a new schema, domain, audit row, nightly training entry), by a few processes at
once. Stores already there (named `<prefix>-<n>`) are kept, so a second run reuses them.
Import after django.setup().
"""

from __future__ import annotations

import multiprocessing
import time

from django.db import connections

from apps.tenants.models import Tenant
from apps.tenants.services import tenant_create


def _create_range(prefix: str, indexes: list[int]) -> int:
    connections.close_all()
    for index in indexes:
        tenant_create(slug=f"{prefix}-{index:05d}", name=f"Scale store {index}")
    connections.close_all()
    return len(indexes)


def stores_ensure(*, count: int, prefix: str = "scale", processes: int = 2) -> float:
    """Make sure stores `<prefix>-00000` … `<prefix>-<count-1>` exist; returns the seconds
    spent creating the missing ones."""
    existing = set(
        Tenant.objects.filter(slug__startswith=f"{prefix}-").values_list("slug", flat=True)
    )
    missing = [i for i in range(count) if f"{prefix}-{i:05d}" not in existing]
    if not missing:
        return 0.0
    started = time.perf_counter()
    connections.close_all()
    chunks = [missing[offset::processes] for offset in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        done = sum(pool.starmap(_create_range, [(prefix, chunk) for chunk in chunks if chunk]))
    elapsed = time.perf_counter() - started
    print(f"created {done} stores in {elapsed:.0f}s ({elapsed / done:.2f}s a store)", flush=True)
    return elapsed


def stores_drop(*, prefix: str = "scale") -> int:
    """Drop the benchmark's stores, schemas included."""
    stores = list(Tenant.objects.filter(slug__startswith=f"{prefix}-"))
    with connections["default"].cursor() as cursor:
        for tenant in stores:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
    Tenant.objects.filter(pk__in=[t.pk for t in stores]).delete()
    return len(stores)
