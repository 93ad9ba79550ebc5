"""Re-encrypt every store's shopper PII under the first PII_ENCRYPTION_KEYS key (key rotation:
put the new key first, run this, then remove the old key)."""

from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from apps.apikeys.services import identity_secret_reencrypt
from apps.catalog.services import shoppers_pii_reencrypt
from apps.tenants.selectors import store_list


class Command(BaseCommand):
    help = "Re-encrypt shopper attributes of every store under the first PII key."

    def handle(self, *args, **options):
        total = 0
        for tenant in store_list():
            with tenant_context(tenant):
                count = shoppers_pii_reencrypt()
                # The identity verification secret (user tokens of the browser SDK) too.
                identity_secret_reencrypt()
            total += count
            self.stdout.write(f"{tenant.schema_name}: {count} shoppers re-encrypted")
        self.stdout.write(f"{total} shoppers re-encrypted")
