from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from apps.audit.selectors import audit_chain_verify
from apps.tenants.commands import store_for_slug


class Command(BaseCommand):
    help = "Verify a store's audit hash chain (--tenant public: the operators' trail)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", required=True, help="store slug, or `public`")

    def handle(self, *args, tenant: str, **options) -> None:
        store = store_for_slug(tenant, allow_public=True)
        with tenant_context(store):
            report = audit_chain_verify()
        if not report.ok:
            raise CommandError(
                f"Audit chain of {tenant} broken at event {report.first_broken_id}: "
                f"{report.reason} ({report.checked} events verified before it)."
            )
        self.stdout.write(f"Audit chain of {tenant} intact: {report.checked} events verified.")
