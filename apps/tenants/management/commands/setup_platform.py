"""Bring the database to a runnable platform, idempotently: shared migrations, the store
template schema, every store's migrations, the operators' site with its domain, and every
store's own beat entries (nightly training)."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.tenants.services import (
    public_tenant_ensure,
    stores_schedules_ensure,
    tenant_template_migrate,
)


class Command(BaseCommand):
    help = "Migrate the public schema, the store template and all stores; ensure the public site."

    def handle(self, *args, **options) -> None:
        verbosity = options["verbosity"]
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        tenant_template_migrate(verbosity=verbosity)
        call_command("migrate_schemas", tenant=True, interactive=False, verbosity=verbosity)
        public_tenant_ensure()
        stores = stores_schedules_ensure()
        if verbosity:
            self.stdout.write(f"Nightly training scheduled for {stores} store(s).")
        self.stdout.write(self.style.SUCCESS(f"Platform ready on {settings.BASE_DOMAIN}."))
