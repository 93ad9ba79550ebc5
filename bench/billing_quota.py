"""Cost of billing on the request path: `quota_check_ingest` (once per ingest batch) and
`usage_record` (after every batch and every recommendation request), against the real Redis
with a warm billing-state cache.

Target: well under 1 ms per call, so billing adds nothing measurable to a 1,000-event batch.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/billing_quota.py [--calls 20000]

Needs a migrated public schema (the Free plan row, read on the first cache miss). Uses a
throw-away schema name for its keys and deletes them afterwards.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django

django.setup()

from django.conf import settings  # noqa: E402

from apps.billing.quotas import quota_check_ingest, usage_record  # noqa: E402
from apps.core.cache import redis_client  # noqa: E402


def _time(fn, calls: int) -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def _report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1e6
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1e6
    rate = len(samples) / sum(samples)
    print(f"{name:<22} p50 {p50:7.1f} µs   p99 {p99:7.1f} µs   {rate:9.0f} calls/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    schema = f"store_benchbill_{secrets.token_hex(3)}"
    tenant = SimpleNamespace(schema_name=schema, pk=0, slug="bench", name="Bench")
    try:
        quota_check_ingest(tenant=tenant, amount=1)  # warm the cached billing state
        _report(
            "quota_check_ingest",
            _time(lambda: quota_check_ingest(tenant=tenant, amount=1000), args.calls),
        )
        _report(
            "usage_record",
            _time(
                lambda: usage_record(tenant=tenant, metric="recommendation_requests", amount=1),
                args.calls,
            ),
        )
    finally:
        client = redis_client()
        prefix = settings.CACHES["default"]["KEY_PREFIX"]
        for key in client.scan_iter(match=f"{schema}:{prefix}:*", count=1000):
            client.delete(key)


if __name__ == "__main__":
    main()
