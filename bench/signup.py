"""Signup-to-store time: the signup POST (account + store provisioned in the request), the
email-confirmation POST (signs in) and the hand-off to the store's host, up to the first
store page, all through the full middleware stack (Django test client, real PostgreSQL/Redis).

    .venv/bin/python bench/signup.py [--count 5]

Creates throw-away users and stores (bench-signup-<n>-<random>) and drops them afterwards;
their audit rows stay (the audit table is append-only).
"""

import argparse
import os
import re
import secrets
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core import mail  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from apps.tenants.models import Tenant  # noqa: E402
from apps.users.models import User  # noqa: E402

PASSWORD = "Bench-Passw0rd-" + secrets.token_hex(4)


def one_signup(slug: str) -> tuple[float, float]:
    """(signup POST seconds, signup → first store page seconds)."""
    public = Client(HTTP_HOST=settings.BASE_DOMAIN)
    started = time.perf_counter()
    response = public.post(
        "/accounts/signup/",
        {
            "email": f"{slug}@example.test",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "store_name": "Bench Store",
            "store_slug": slug,
        },
    )
    signed_up = time.perf_counter() - started
    assert response.status_code == 302, response.status_code
    path = re.search(r"https?://[^/\s]+(/accounts/confirm-email/\S+)", mail.outbox[-1].body)[1]
    confirmed = public.post(path)
    handoff = urlsplit(confirmed["Location"])
    store = Client(HTTP_HOST=handoff.netloc.split(":")[0])
    landed = store.get(handoff.path, {k: v[0] for k, v in parse_qs(handoff.query).items()})
    page = store.get(landed["Location"])
    assert page.status_code == 200, page.status_code
    return signed_up, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5)
    args = parser.parse_args()

    call_command("setup_platform", verbosity=0)
    setup_test_environment()  # locmem outbox
    run_id = secrets.token_hex(3)
    # One warm-up signup first: URL confs and their imports load on the first request.
    slugs = [f"bench-signup-{index}-{run_id}" for index in range(args.count + 1)]
    signups, totals = [], []
    try:
        for index, slug in enumerate(slugs):
            signup_seconds, total_seconds = one_signup(slug)
            if index:
                signups.append(signup_seconds)
                totals.append(total_seconds)
    finally:
        connection.set_schema_to_public()
        for tenant in Tenant.objects.filter(slug__in=slugs):
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
            tenant.delete()
        User.objects.filter(email__in=[f"{slug}@example.test" for slug in slugs]).delete()

    for label, values in (("signup POST (user + store)", signups), ("signup → store page", totals)):
        print(
            f"{label} x{len(values)}: mean {statistics.mean(values):.3f}s  "
            f"p50 {statistics.median(values):.3f}s  max {max(values):.3f}s"
        )


if __name__ == "__main__":
    main()
