from django.core.management.base import BaseCommand, CommandError

from apps.billing.services import subscription_sync
from apps.core.errors import ApplicationError
from apps.tenants.commands import store_for_slug


class Command(BaseCommand):
    help = "Re-read a store's subscription from Stripe (recovery after missed webhooks)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", required=True, metavar="SLUG")

    def handle(self, *args, tenant: str, **options) -> None:
        store = store_for_slug(tenant)
        try:
            sub = subscription_sync(tenant=store)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        period = (
            f", period ends {sub.current_period_end:%Y-%m-%d}" if sub.current_period_end else ""
        )
        self.stdout.write(f"{store.slug}: plan {sub.plan.code}, status {sub.status}{period}")
