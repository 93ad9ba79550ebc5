"""Writes of the store connectors, by subject:

- `connections`: connect a platform, generate (WooCommerce) or set (Shopify) the webhook secret;
- `webhooks`: receive a signed delivery once and map it onto the catalog and events;
- `privacy`: Shopify's mandatory privacy webhooks (data request, customer and shop redaction);
- `backfill`: read a shop's products and orders over its REST API.
"""

from apps.connectors.services.connections import (
    connection_shopify_secret_set,
    connection_woocommerce_secret_generate,
)
from apps.connectors.services.privacy import shopper_data_requests_erase
from apps.connectors.services.webhooks import WebhookRequest, webhook_receive

__all__ = [
    "WebhookRequest",
    "connection_shopify_secret_set",
    "connection_woocommerce_secret_generate",
    "shopper_data_requests_erase",
    "webhook_receive",
]
