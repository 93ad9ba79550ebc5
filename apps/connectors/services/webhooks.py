"""Receiving a platform's webhook delivery: verified against the store's own secret over the raw
body, processed once per delivery, mapped onto the catalog and events through the catalog's
services (the one purchase rule then holds whatever the source).

Idempotency: a delivery is keyed by the platform's delivery id. Shopify's `X-Shopify-Webhook-Id`
is stable across its retries. WooCommerce's `X-WC-Webhook-Delivery-ID` is a hash of the webhook
id and the current second, so two different deliveries of one webhook in the same second share
it: the key adds a digest of the body. Either way the mapping itself is idempotent (items are
upserted, a purchase is one per order line), so a redelivery under a new id changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.catalog.services import events_ingest, item_delete, items_upsert
from apps.catalog.validation import RowError, events_validate
from apps.connectors import mapping, selectors
from apps.connectors.mapping import PayloadError
from apps.connectors.models import Platform, StoreConnection, WebhookDelivery
from apps.connectors.services import privacy
from apps.connectors.signatures import signature_valid
from apps.core.errors import ApplicationError

logger = logging.getLogger(__name__)

WOO_PING = re.compile(rb"^webhook_id=\d{1,20}$")


@dataclass(frozen=True)
class WebhookRequest:
    platform: str
    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class _Delivery:
    key: str
    topic: str
    shop_domain: str


def _header_error(header: str, message: str, status_code: int, code: str) -> ApplicationError:
    return ApplicationError(message, code=code, status_code=status_code, fields={header: [message]})


def _verified(request: WebhookRequest, store: StoreConnection) -> _Delivery:
    """Check the signature and the headers a delivery needs; 401 / 403 / 400 naming the
    header."""
    headers = request.headers
    if request.platform == Platform.WOOCOMMERCE:
        signature_header, topic_header, id_header = (
            "X-WC-Webhook-Signature",
            "X-WC-Webhook-Topic",
            "X-WC-Webhook-Delivery-ID",
        )
    else:
        signature_header, topic_header, id_header = (
            "X-Shopify-Hmac-Sha256",
            "X-Shopify-Topic",
            "X-Shopify-Webhook-Id",
        )
    given = headers.get(signature_header, "")
    if not given:
        raise _header_error(signature_header, "The signature header is missing.", 401, "unsigned")
    if not signature_valid(store.webhook_secret, request.body, given):
        raise _header_error(
            signature_header,
            "The signature does not match this store's secret.",
            401,
            "bad_signature",
        )
    shop_domain = headers.get("X-Shopify-Shop-Domain", "").strip().lower()
    if (
        request.platform == Platform.SHOPIFY
        and store.shop_domain
        and shop_domain
        and shop_domain != store.shop_domain
    ):
        raise _header_error(
            "X-Shopify-Shop-Domain", "This store is connected to another shop.", 403, "wrong_shop"
        )
    topic = headers.get(topic_header, "").strip()
    if not topic or len(topic) > 100:
        raise _header_error(topic_header, "A webhook topic is required.", 400, "invalid")
    delivery_id = headers.get(id_header, "").strip()
    if not delivery_id or len(delivery_id) > 128:
        raise _header_error(id_header, "A delivery id of 1 to 128 characters.", 400, "invalid")
    if request.platform == Platform.WOOCOMMERCE:
        delivery_id = f"{delivery_id}:{hashlib.sha256(request.body).hexdigest()[:32]}"
    return _Delivery(key=delivery_id, topic=topic, shop_domain=shop_domain or store.shop_domain)


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApplicationError(
            "The body is not valid JSON.", fields={"body": [f"Not valid JSON: {exc}"]}
        ) from exc
    if type(payload) is not dict:
        raise ApplicationError(
            "The body must be a JSON object.", fields={"body": ["Must be a JSON object."]}
        )
    return payload


# --- mapping onto the catalog ---------------------------------------------------------------------
def _items_write(row: dict[str, Any]) -> dict[str, Any]:
    result = items_upsert(rows=[row])
    if result.errors:
        raise ApplicationError(
            "The product could not be stored.",
            fields={error.field or "body": [error.message] for error in result.errors},
        )
    return {"items_created": result.created, "items_updated": result.updated}


def _item_remove(item_id: str) -> dict[str, Any]:
    try:
        item_delete(item_id=item_id)
    except ApplicationError as exc:
        if exc.status_code != 404:
            raise
        return {"items_removed": 0}
    return {"items_removed": 1}


def _lines_refused(errors: list[RowError]) -> ApplicationError:
    return ApplicationError(
        "The order's lines could not be stored.",
        fields={f"line.{error.field}": [error.message] for error in errors},
    )


def events_store(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Order lines into the store's events (validated, metered and deduplicated as the API's);
    400 naming the fields when any line is refused."""
    if not events:
        return {"purchases": 0, "refunds": 0, "duplicates": 0}
    # Refused before anything is written: `events_ingest` would store the valid lines, and
    # although the delivery's transaction then rolls them back, their quota reservation (the
    # month's counter in Redis) would stay counted.
    _, errors, _ = events_validate(events, now=timezone.now())
    if errors:
        raise _lines_refused(errors)
    result = events_ingest(rows=events, source="connector")
    if result.errors:
        raise _lines_refused(result.errors)
    return {
        "purchases": result.accepted_by_type.get("purchase", 0),
        "refunds": result.accepted_by_type.get("refund", 0),
        "duplicates": result.duplicates,
    }


def _woo_product(payload: dict[str, Any], topic: str, store: StoreConnection) -> dict[str, Any]:
    if topic == "product.deleted" or mapping.woo_item_removed(payload):
        return _item_remove(mapping.platform_id(payload.get("id"), "id"))
    return _items_write(mapping.woo_item_row(payload))


def _woo_order(payload: dict[str, Any], topic: str, store: StoreConnection) -> dict[str, Any]:
    if topic == "order.deleted":
        return {}
    lines = mapping.woo_order_lines(payload, schema_name=connection.schema_name, now=timezone.now())
    return events_store(lines.events)


def _shopify_product(payload: dict[str, Any], topic: str, store: StoreConnection) -> dict[str, Any]:
    if topic == "products/delete" or mapping.shopify_item_removed(payload):
        return _item_remove(mapping.platform_id(payload.get("id"), "id"))
    return _items_write(mapping.shopify_item_row(payload, shop_domain=store.shop_domain))


def _shopify_order(payload: dict[str, Any], topic: str, store: StoreConnection) -> dict[str, Any]:
    lines = mapping.shopify_order_lines(
        payload, schema_name=connection.schema_name, now=timezone.now()
    )
    return events_store(lines.events)


def _shopify_refund(payload: dict[str, Any], topic: str, store: StoreConnection) -> dict[str, Any]:
    """A refund names its order and lines, not the shopper: it is credited to whoever bought
    the line. A line whose purchase is not stored yet is left to the order's next update,
    whose `refunds` carry it."""
    order_id = mapping.platform_id(payload.get("order_id"), "order_id")
    purchasers = selectors.order_purchasers(order_id)
    when = timezone.now()
    events = [
        {
            "user_id": purchasers[item_id],
            "item_id": item_id,
            "type": "refund",
            "order_id": order_id,
            "timestamp": when,
        }
        for item_id in sorted(mapping.shopify_refunded_items(payload))
        if item_id in purchasers
    ]
    return events_store(events)


Handler = Callable[[dict[str, Any], str, StoreConnection], dict[str, Any]]

_HANDLERS: dict[str, dict[str, Handler]] = {
    Platform.WOOCOMMERCE: {
        "product.created": _woo_product,
        "product.updated": _woo_product,
        "product.restored": _woo_product,
        "product.deleted": _woo_product,
        "order.created": _woo_order,
        "order.updated": _woo_order,
        "order.restored": _woo_order,
        "order.deleted": _woo_order,
    },
    Platform.SHOPIFY: {
        "products/create": _shopify_product,
        "products/update": _shopify_product,
        "products/delete": _shopify_product,
        "orders/create": _shopify_order,
        "orders/updated": _shopify_order,
        "orders/paid": _shopify_order,
        "orders/cancelled": _shopify_order,
        "refunds/create": _shopify_refund,
        "customers/data_request": privacy.customer_data_request,
        "customers/redact": privacy.customer_redact,
        "shop/redact": privacy.shop_redact,
    },
}


def _resource_id(payload: dict[str, Any]) -> str:
    """The payload's id for the delivery log. NUL, which PostgreSQL text cannot hold, is
    replaced: the delivery is recorded (and then refused naming the field), not a 500."""
    value = payload.get("id", payload.get("shop_id", ""))
    return str(value).replace("\x00", "\ufffd")[:128] if type(value) in (int, str) else ""


def _delivery_failed(platform: str, delivery: _Delivery, resource_id: str, error: str) -> None:
    with transaction.atomic():
        updated = WebhookDelivery.objects.filter(
            platform=platform, delivery_key=delivery.key
        ).update(
            status=WebhookDelivery.Status.FAILED,
            error=error[:2000],
            attempts=F("attempts") + 1,
            updated_at=timezone.now(),
        )
        if not updated:
            WebhookDelivery.objects.create(
                platform=platform,
                delivery_key=delivery.key,
                topic=delivery.topic,
                resource_id=resource_id,
                status=WebhookDelivery.Status.FAILED,
                error=error[:2000],
            )


def _error_text(exc: ApplicationError) -> str:
    details = "; ".join(
        f"{field}: {' '.join(map(str, msgs))}" for field, msgs in exc.fields.items()
    )
    return f"{exc.message} {details}".strip()


def webhook_receive(request: WebhookRequest) -> dict[str, Any]:
    """Verify and process one delivery in the current store; returns the answer's JSON body.

    WooCommerce's unsigned creation ping (`webhook_id=N`) is answered at once, changing
    nothing. Otherwise: 404 `not_connected` when the store has no secret for the platform,
    401 for a missing or wrong signature, 403 for another Shopify shop, 400 naming the header
    or field for a malformed delivery (recorded as failed when it passed the signature), 200
    `duplicate` for a delivery already processed. Topics it does not use are answered 200
    and logged as ignored. A failed delivery may be retried by the platform (same id)."""
    store = selectors.connection_get(request.platform)
    if (
        request.platform == Platform.WOOCOMMERCE
        and "X-WC-Webhook-Signature" not in request.headers
        and WOO_PING.match(request.body.strip())
    ):
        if store is None or not store.webhook_secret:
            raise ApplicationError(
                "WooCommerce is not connected to this store.", code="not_connected", status_code=404
            )
        return {"received": True, "ping": True}
    if store is None or not store.webhook_secret:
        raise ApplicationError(
            f"{Platform(request.platform).label} is not connected to this store.",
            code="not_connected",
            status_code=404,
        )
    delivery = _verified(request, store)
    try:
        payload = _payload(request.body)
    except ApplicationError as exc:
        _delivery_failed(request.platform, delivery, "", _error_text(exc))
        raise
    resource_id = _resource_id(payload)
    handler = _HANDLERS[request.platform].get(delivery.topic)
    try:
        with transaction.atomic():
            record, created = WebhookDelivery.objects.get_or_create(
                platform=request.platform,
                delivery_key=delivery.key,
                defaults={
                    "topic": delivery.topic,
                    "resource_id": resource_id,
                    "status": WebhookDelivery.Status.PROCESSED,
                },
            )
            if not created:
                record = WebhookDelivery.objects.select_for_update().get(pk=record.pk)
                if record.status != WebhookDelivery.Status.FAILED:
                    return {"received": True, "duplicate": True}
                record.attempts += 1
            if handler is None:
                record.status, summary = WebhookDelivery.Status.IGNORED, {}
            else:
                summary = handler(payload, delivery.topic, store)
                record.status = WebhookDelivery.Status.PROCESSED
            record.summary, record.error = summary, ""
            record.save()
    except PayloadError as exc:
        error = ApplicationError(
            f"Invalid input in: {exc.field}.", fields={exc.field: [exc.message]}
        )
        _delivery_failed(request.platform, delivery, resource_id, _error_text(error))
        raise error from exc
    except ApplicationError as exc:
        _delivery_failed(request.platform, delivery, resource_id, _error_text(exc))
        raise
    except Exception as exc:
        _delivery_failed(
            request.platform, delivery, resource_id, f"Internal error ({type(exc).__name__})."
        )
        raise
    logger.info(
        "connector delivery processed",
        extra={"platform": request.platform, "topic": delivery.topic, "summary": summary},
    )
    return {"received": True, "duplicate": False, "status": record.status, **summary}
