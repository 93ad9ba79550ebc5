"""Time to provision a store (tenant row, schema cloned from the template, domain, owner).

Target: under 3 s per new store. Run with DATABASE_URL / REDIS_URL pointing at a platform that
`manage.py setup_platform` has prepared (`make bench` does this with the local services):

    .venv/bin/python bench/tenant_create.py [--count 10]

Creates throw-away stores named bench-<n>-<random> and drops them (schemas included) afterwards.
"""

import argparse
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from apps.tenants.models import Tenant  # noqa: E402
from apps.tenants.services import tenant_create  # noqa: E402
from apps.users.services import user_get_or_create_for_email  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args()

    call_command("setup_platform", verbosity=0)
    run_id = secrets.token_hex(3)
    owner, _ = user_get_or_create_for_email(email=f"bench-{run_id}@example.test")
    timings = []
    created = []
    try:
        for index in range(args.count):
            started = time.perf_counter()
            tenant = tenant_create(slug=f"bench-{index}-{run_id}", name="Bench", owner=owner)
            timings.append(time.perf_counter() - started)
            created.append(tenant)
    finally:
        for tenant in created:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
            Tenant.objects.filter(pk=tenant.pk).delete()
        owner.delete()

    timings.sort()
    p95 = timings[max(0, round(0.95 * len(timings)) - 1)]
    print(
        f"tenant_create x{len(timings)}: "
        f"mean {statistics.mean(timings):.3f}s  p50 {statistics.median(timings):.3f}s  "
        f"p95 {p95:.3f}s  max {timings[-1]:.3f}s  (target < 3s)"
    )


if __name__ == "__main__":
    main()
