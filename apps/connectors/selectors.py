"""Reads of the store connectors: connections, the delivery log, data requests, and the order
lines already stored (to credit a refund to the shopper who bought)."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.catalog.models import Event
from apps.connectors.models import ShopperDataRequest, StoreConnection, WebhookDelivery
from apps.tenants.selectors import store_url

DELIVERIES_SHOWN = 30


def connection_get(platform: str) -> StoreConnection | None:
    return StoreConnection.objects.filter(platform=platform).first()


def connections_by_platform() -> dict[str, StoreConnection]:
    return {connection.platform: connection for connection in StoreConnection.objects.all()}


def delivery_list(*, limit: int = DELIVERIES_SHOWN) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.order_by("-id")[:limit])


def data_request_list() -> QuerySet[ShopperDataRequest]:
    return ShopperDataRequest.objects.defer("export").order_by("-id")


def data_request_get(request_id: int) -> ShopperDataRequest | None:
    return ShopperDataRequest.objects.filter(pk=request_id).first()


def order_purchasers(order_id: str) -> dict[str, str]:
    """Item id → shopper of the stored purchases of `order_id`."""
    return dict(
        Event.objects.filter(
            order_id=order_id, type=Event.Type.PURCHASE, user_id__isnull=False
        ).values_list("item_id", "user_id")
    )


# Topics each platform's webhooks should subscribe to (setup instructions, README).
WOO_TOPICS = (
    "product.created",
    "product.updated",
    "product.deleted",
    "order.created",
    "order.updated",
)
SHOPIFY_TOPICS = (
    "products/create",
    "products/update",
    "products/delete",
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "refunds/create",
)
SHOPIFY_PRIVACY_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")


def webhook_url(tenant, platform: str) -> str:
    """The delivery URL to give the platform: the store's own host."""
    return store_url(tenant, f"/api/v1/connectors/{platform}/webhook")
