import sys

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from apps.connectors import selectors
from apps.connectors.models import Platform
from apps.connectors.services import (
    connection_shopify_secret_set,
    connection_woocommerce_secret_generate,
)
from apps.core.errors import ApplicationError
from apps.tenants.commands import store_for_slug


class Command(BaseCommand):
    help = (
        "Connect a store to WooCommerce (generates the webhook secret, printed once) or Shopify "
        "(the custom app's API secret key); prints the webhook URL and the topics to subscribe."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", required=True, help="store slug")
        parser.add_argument("--platform", required=True, choices=list(Platform.values))
        parser.add_argument(
            "--shop-domain",
            default="",
            help="Shopify: the shop's myshopify.com domain; WooCommerce: the site URL (optional)",
        )
        parser.add_argument(
            "--api-secret",
            default="",
            help="Shopify: the app's API secret key ('-' reads it from standard input)",
        )

    def handle(self, *args, tenant: str, platform: str, **options) -> None:
        store = store_for_slug(tenant)
        label = "command:connect_store"
        try:
            with tenant_context(store):
                if platform == Platform.WOOCOMMERCE:
                    _, secret = connection_woocommerce_secret_generate(
                        site_url=options["shop_domain"], actor_label=label
                    )
                else:
                    api_secret = options["api_secret"]
                    if api_secret == "-":  # noqa: S105 (stdin marker, not a secret)
                        api_secret = sys.stdin.readline().strip()
                    connection_shopify_secret_set(
                        secret=api_secret, shop_domain=options["shop_domain"], actor_label=label
                    )
        except ApplicationError as exc:
            fields = "; ".join(
                f"--{k.replace('_', '-')}: {' '.join(v)}" for k, v in exc.fields.items()
            )
            raise CommandError(f"{exc.message} {fields}".strip()) from exc
        self.stdout.write(f"Connected {Platform(platform).label} to {store.slug}.")
        self.stdout.write(f"Webhook URL: {selectors.webhook_url(store, platform)}")
        if platform == Platform.WOOCOMMERCE:
            self.stdout.write(f"Secret (shown once): {secret}")
            self.stdout.write(
                "In WooCommerce → Settings → Advanced → Webhooks, add one webhook per topic "
                f"({', '.join(selectors.WOO_TOPICS)}) with this URL and secret, "
                "API version WP REST API Integration v3."
            )
        else:
            self.stdout.write(
                "In the custom app, subscribe these topics to the URL (JSON): "
                f"{', '.join(selectors.SHOPIFY_TOPICS)}; and the privacy webhooks "
                f"({', '.join(selectors.SHOPIFY_PRIVACY_TOPICS)})."
            )
