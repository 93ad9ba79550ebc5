import os

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from apps.connectors.models import Platform
from apps.connectors.services.backfill import shopify_backfill, woocommerce_backfill
from apps.core.errors import ApplicationError
from apps.tenants.commands import store_for_slug


class Command(BaseCommand):
    help = (
        "Read a shop's products and orders over its REST API into a store (WooCommerce REST API "
        "v3, Shopify Admin REST), with progress. Re-runs store nothing twice. Credentials come "
        "from the environment: WOOCOMMERCE_CONSUMER_KEY / WOOCOMMERCE_CONSUMER_SECRET, or "
        "SHOPIFY_ACCESS_TOKEN (kept off the command line, which other users can read)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", required=True, help="store slug")
        parser.add_argument("--platform", required=True, choices=list(Platform.values))
        parser.add_argument("--site-url", default="", help="WooCommerce: https://shop.example")
        parser.add_argument("--shop-domain", default="", help="Shopify: my-shop.myshopify.com")
        parser.add_argument(
            "--shop-url", default="", help="Shopify: API base URL (default https://SHOP-DOMAIN)"
        )

    def _env(self, name: str) -> str:
        value = os.environ.get(name, "")
        if not value:
            raise CommandError(f"Set {name} in the environment.")
        return value

    def handle(self, *args, tenant: str, platform: str, **options) -> None:
        store = store_for_slug(tenant)

        def progress(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        try:
            with tenant_context(store):
                if platform == Platform.WOOCOMMERCE:
                    if not options["site_url"]:
                        raise CommandError("--site-url is required for WooCommerce.")
                    result = woocommerce_backfill(
                        site_url=options["site_url"],
                        consumer_key=self._env("WOOCOMMERCE_CONSUMER_KEY"),
                        consumer_secret=self._env("WOOCOMMERCE_CONSUMER_SECRET"),
                        progress=progress,
                    )
                else:
                    domain = options["shop_domain"].strip().lower()
                    if not domain:
                        raise CommandError("--shop-domain is required for Shopify.")
                    result = shopify_backfill(
                        shop_url=options["shop_url"] or f"https://{domain}",
                        shop_domain=domain,
                        access_token=self._env("SHOPIFY_ACCESS_TOKEN"),
                        progress=progress,
                    )
        except ApplicationError as exc:
            fields = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.fields.items())
            raise CommandError(f"{exc.message} {fields}".strip()) from exc
        for error in result.errors:
            self.stderr.write(error)
        self.stdout.write(
            f"Items: {result.items_created} created, {result.items_updated} updated. "
            f"Orders: {result.orders} read, {result.purchases} purchases and {result.refunds} "
            f"refunds stored, {result.duplicates} already stored. Errors: {len(result.errors)}."
        )
