"""Bring the database to a runnable platform, idempotently: shared migrations, the store
template schema, every store's migrations, the operators' site with its domain, and the
stores' own beat entries (nightly training) where missing: for the stores migrated now, the
stores without any entry (one query finds them), or every store with --all-schedules.

Store migrations go through apps/tenants/store_migrations.py: the stores already at the
template's state are found with one query and skipped; a new migration runs on one store and
its recorded SQL is replayed into the others, a few connections at once."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps.tenants.services import (
    public_tenant_ensure,
    stores_schedules_ensure,
    tenant_template_migrate,
)
from apps.tenants.store_migrations import (
    platform_migrations_pending,
    stores_migrate,
    stores_schedules_repair,
)


class Command(BaseCommand):
    help = "Migrate the public schema, the store template and all stores; ensure the public site."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="Change nothing; exit 1 unless this release's shared migrations are applied "
            "and its store template is recorded (a web pod's init container waits on it).",
        )
        parser.add_argument(
            "--all-schedules",
            action="store_true",
            help="Announce every store as ready again (a release that adds a per-store beat "
            "entry); by default only stores migrated now or without any entry are.",
        )

    def handle(self, *args, **options) -> None:
        verbosity = options["verbosity"]
        if options["check"]:
            pending = platform_migrations_pending()
            if pending:
                raise CommandError(f"Not migrated yet: {pending}.")
            self.stdout.write("Platform migrated.")
            return
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        tenant_template_migrate(verbosity=verbosity)
        report = stores_migrate(verbosity=verbosity)
        if verbosity:
            self.stdout.write(
                f"Stores: {report.up_to_date} of {report.stores} already migrated, "
                f"{len(report.migrated)} migrated in {report.seconds:.1f}s."
            )
        public_tenant_ensure()
        if options["all_schedules"]:
            stores = stores_schedules_ensure()
        else:
            stores = stores_schedules_repair(schemas=report.migrated)
        if verbosity:
            self.stdout.write(f"Store schedules ensured for {stores} store(s).")
        if report.failed:
            failures = "\n".join(f"  {schema}: {error}" for schema, error in report.failed.items())
            raise CommandError(
                f"{len(report.failed)} store(s) could not be migrated (run again):\n{failures}"
            )
        self.stdout.write(self.style.SUCCESS(f"Platform ready on {settings.BASE_DOMAIN}."))
