from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from apps.recommendations import selectors
from apps.recommendations.management.commands._common import format_table
from apps.tenants.commands import store_for_slug


class Command(BaseCommand):
    help = "Print the held-out metrics of a store's model versions (newest first)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", required=True, help="store slug")
        parser.add_argument("--limit", type=int, default=10, help="versions to show")

    def handle(self, *args, tenant: str, limit: int, **options) -> None:
        store = store_for_slug(tenant)
        with tenant_context(store):
            versions = list(selectors.model_version_list()[:limit])
            active = selectors.model_version_active()
            for version in versions:
                note = version.error or version.activation_note
                self.stdout.write(
                    f"{version.label}  {version.status:<8}  {version.created_at:%Y-%m-%d %H:%M}  "
                    f"{version.counts.get('events', 0)} events  {note}"
                )
            self.stdout.write("")
            self.stdout.write(format_table(selectors.metrics_table(versions)))
            self.stdout.write(f"serving: {active.label if active else 'fallback (no model)'}")
