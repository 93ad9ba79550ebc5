"""List stored ids that break the id rule (apps.core.ids), per store. They stay reachable
through the API (reads and deletes accept any id that could have been stored)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from apps.catalog.selectors import ids_breaking_rule
from apps.tenants.commands import store_for_slug
from apps.tenants.selectors import store_list


class Command(BaseCommand):
    help = (
        "List stored item, shopper and event ids that break the id rule (1-128 printable "
        "characters after NFC normalisation, no edge whitespace). Exit status 1 when any."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", help="store slug (default: every store)")

    def handle(self, *args, tenant: str | None = None, **options) -> None:
        stores = [store_for_slug(tenant)] if tenant else store_list()
        total = 0
        for store in stores:
            with tenant_context(store):
                found = ids_breaking_rule()
            for kind, value, why in found:
                self.stdout.write(f"{store.slug}\t{kind}\t{value!r}\t{why}")
            total += len(found)
        self.stdout.write(f"{total} stored id(s) break the id rule.")
        if total:
            raise SystemExit(1)
