"""Platform payloads → ShelfSense rows: items (`items_upsert` rows) and order lines (purchase and
refund events for `events_ingest`). Pure functions over the platforms' documented JSON
(WooCommerce REST API v3, Shopify Admin REST), shared by the webhooks and the backfills.

Shoppers are keyed by the platform's customer id, or for a guest checkout by `guest_user_id`
of the billing email: a keyed hash (never the address), the same for both platforms of one
store and different between stores.

A malformed payload raises `PayloadError` naming the field (answered 400).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.utils.html import strip_tags

from apps.catalog.item_validation import DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH

# WooCommerce: an order counts as bought once it reaches one of these; these undo it.
WOO_PAID_STATUSES = frozenset({"processing", "completed"})
WOO_UNDONE_STATUSES = frozenset({"cancelled", "refunded"})
# Shopify: financial states of an order that was paid (refunds are read from `refunds`).
SHOPIFY_PAID_STATES = frozenset({"paid", "partially_refunded", "refunded"})


class PayloadError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class OrderLines:
    """Events of one order: purchases (one per item, quantities and totals summed over the
    order's lines of that item) and refunds."""

    order_id: str
    purchases: list[dict[str, Any]]
    refunds: list[dict[str, Any]]

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.purchases + self.refunds


def guest_user_id(email: str, *, schema_name: str) -> str:
    """The shopper id of a guest checkout: HMAC-SHA256 of the store and the normalised email
    under a key derived from SECRET_KEY, so the address is not stored nor guessable from the
    id without the key, and one address is a different shopper in two stores."""
    key = hashlib.sha256(b"shelfsense-guest-email:" + settings.SECRET_KEY.encode()).digest()
    message = f"{schema_name}\x00{email.strip().lower()}".encode()
    return "guest-" + hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


# --- small readers -------------------------------------------------------------------------------
def _object(payload: Any, field: str) -> dict[str, Any]:
    if type(payload) is not dict:
        raise PayloadError(field, "Must be a JSON object.")
    return payload


def platform_id(value: Any, field: str) -> str:
    """A platform id (a JSON integer, or a string such as a gid://) as ShelfSense's id.

    A NUL character is refused here, naming the payload's field: PostgreSQL text cannot hold
    one, so the deletes, refunds and privacy webhooks that look the id up would fail with a
    500. The rest of the id rule is the catalog's (writes answer 400 naming item_id, ...)."""
    if type(value) is int and value > 0:
        return str(value)
    if type(value) is str and value.strip():
        if "\x00" in value:
            raise PayloadError(field, "Must not contain NUL characters.")
        return value.strip()
    raise PayloadError(field, "Must be a positive integer or a non-blank string.")


def _list(payload: dict[str, Any], field: str) -> list[Any]:
    value = payload.get(field) or []
    if type(value) is not list:
        raise PayloadError(field, "Must be a list.")
    return value


def _text(value: Any, max_length: int) -> str:
    if type(value) is not str:
        return ""
    return strip_tags(value).strip()[:max_length]


def _money(value: Any) -> Decimal | None:
    """A platform amount ("19.99", 19.99) or None when absent, blank or not a number."""
    if value is None or type(value) is bool or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def _timestamp(value: Any, *, naive_is_utc: bool) -> datetime | None:
    if type(value) is not str or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        if not naive_is_utc:
            return None
        return moment.replace(tzinfo=UTC)
    # In UTC whatever the offset (PostgreSQL takes offsets up to ±15:59 only). A moment too
    # close to year 1 or 9999 to move is kept: event validation refuses it naming `timestamp`.
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return moment


def _summed_lines(
    lines: Iterable[tuple[str, int, Decimal | None]],
) -> dict[str, tuple[int, Decimal | None]]:
    """(item, quantity, total) lines → item: (quantity, total) summed (two variations of one
    product are one purchase of it: the one purchase rule keys on (order, item))."""
    summed: dict[str, tuple[int, Decimal | None]] = {}
    for item_id, quantity, total in lines:
        old_quantity, old_total = summed.get(item_id, (0, None))
        if total is not None:
            old_total = (old_total or Decimal(0)) + total
        summed[item_id] = (old_quantity + quantity, old_total)
    return summed


def _purchase(user_id: str, order_id: str, item_id: str, total: Decimal | None, when: datetime):
    event = {
        "user_id": user_id,
        "item_id": item_id,
        "type": "purchase",
        "order_id": order_id,
        "timestamp": when,
    }
    if total is not None and total > 0:
        # Attributed revenue: the line's total (after discounts, before tax and shipping).
        event["value"] = float(total)
    return event


def _refund(user_id: str, order_id: str, item_id: str, when: datetime) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "item_id": item_id,
        "type": "refund",
        "order_id": order_id,
        "timestamp": when,
    }


# --- WooCommerce ---------------------------------------------------------------------------------
def woo_item_row(product: Any) -> dict[str, Any]:
    """A WooCommerce product (REST v3 / webhook payload) as an item row."""
    product = _object(product, "body")
    images = _list(product, "images")
    image = images[0].get("src") if images and type(images[0]) is dict else None
    attributes = {"source": "woocommerce"}
    if type(product.get("permalink")) is str and product["permalink"]:
        attributes["url"] = product["permalink"]
    if type(image) is str and image:
        attributes["image_url"] = image
    if type(product.get("sku")) is str and product["sku"]:
        attributes["sku"] = product["sku"]
    return {
        "item_id": platform_id(product.get("id"), "id"),
        "title": _text(product.get("name"), TITLE_MAX_LENGTH),
        "description": _text(
            product.get("short_description") or product.get("description"),
            DESCRIPTION_MAX_LENGTH,
        ),
        "categories": [
            category["name"][:200]
            for category in _list(product, "categories")
            if type(category) is dict and type(category.get("name")) is str and category["name"]
        ][:100],
        "price": None if (price := _money(product.get("price"))) is None else str(price),
        "in_stock": product.get("stock_status") != "outofstock",
        "attributes": attributes,
    }


def woo_item_removed(product: Any) -> bool:
    """A product trashed or no longer published is removed from recommendations."""
    product = _object(product, "body")
    return product.get("status") not in (None, "publish")


def woo_shopper(order: dict[str, Any], *, schema_name: str) -> str | None:
    customer_id = order.get("customer_id")
    if type(customer_id) is int and customer_id > 0:
        return str(customer_id)
    billing = order.get("billing")
    email = billing.get("email") if type(billing) is dict else None
    if type(email) is str and "@" in email:
        return guest_user_id(email, schema_name=schema_name)
    return None


def woo_order_lines(order: Any, *, schema_name: str, now: datetime) -> OrderLines:
    """Purchases once the order is processing or completed; refunds when it is cancelled or
    refunded. Other states (pending, on-hold, failed, ...) bring nothing yet."""
    order = _object(order, "body")
    order_id = platform_id(order.get("id"), "id")
    status = order.get("status")
    if status not in WOO_PAID_STATUSES and status not in WOO_UNDONE_STATUSES:
        return OrderLines(order_id, [], [])
    user_id = woo_shopper(order, schema_name=schema_name)
    if user_id is None:
        raise PayloadError("customer_id", "Neither a customer id nor a billing email.")
    lines = []
    for index, line in enumerate(_list(order, "line_items")):
        line = _object(line, f"line_items[{index}]")
        if not line.get("product_id"):
            continue  # a line of a deleted product: no item to credit
        quantity = line.get("quantity") if type(line.get("quantity")) is int else 1
        item_id = platform_id(line["product_id"], f"line_items[{index}].product_id")
        lines.append((item_id, quantity, _money(line.get("total"))))
    summed = _summed_lines(lines)
    if status in WOO_UNDONE_STATUSES:
        when = _timestamp(order.get("date_modified_gmt"), naive_is_utc=True) or now
        return OrderLines(order_id, [], [_refund(user_id, order_id, i, when) for i in summed])
    when = (
        _timestamp(order.get("date_paid_gmt"), naive_is_utc=True)
        or _timestamp(order.get("date_created_gmt"), naive_is_utc=True)
        or now
    )
    return OrderLines(
        order_id,
        [_purchase(user_id, order_id, i, total, when) for i, (_, total) in summed.items()],
        [],
    )


# --- Shopify -------------------------------------------------------------------------------------
def shopify_item_row(product: Any, *, shop_domain: str) -> dict[str, Any]:
    """A Shopify product (products/create|update payload, Admin REST) as an item row."""
    product = _object(product, "body")
    variants = [v for v in _list(product, "variants") if type(v) is dict]
    prices = [p for v in variants if (p := _money(v.get("price"))) is not None]
    image = product.get("image") if type(product.get("image")) is dict else None
    images = _list(product, "images")
    src = (image or (images[0] if images and type(images[0]) is dict else {})).get("src")
    attributes: dict[str, Any] = {"source": "shopify"}
    if type(product.get("handle")) is str and product["handle"] and shop_domain:
        attributes["url"] = f"https://{shop_domain}/products/{product['handle']}"
    if type(src) is str and src:
        attributes["image_url"] = src
    if type(product.get("vendor")) is str and product["vendor"]:
        attributes["vendor"] = product["vendor"][:200]
    categories = []
    if type(product.get("product_type")) is str and product["product_type"].strip():
        categories.append(product["product_type"].strip()[:200])
    if type(product.get("tags")) is str:
        categories += [tag.strip()[:200] for tag in product["tags"].split(",") if tag.strip()]
    return {
        "item_id": platform_id(product.get("id"), "id"),
        "title": _text(product.get("title"), TITLE_MAX_LENGTH),
        "description": _text(product.get("body_html"), DESCRIPTION_MAX_LENGTH),
        "categories": list(dict.fromkeys(categories))[:100],
        "price": str(min(prices)) if prices else None,
        # In stock when any variant can be sold: untracked, sold on backorder, or quantity left.
        "in_stock": not variants
        or any(
            v.get("inventory_management") in (None, "")
            or v.get("inventory_policy") == "continue"
            or (type(v.get("inventory_quantity")) is int and v["inventory_quantity"] > 0)
            for v in variants
        ),
        "attributes": attributes,
    }


def shopify_item_removed(product: Any) -> bool:
    """Archived and draft products are removed from recommendations."""
    product = _object(product, "body")
    return product.get("status") not in (None, "active")


def shopify_shopper(order: dict[str, Any], *, schema_name: str) -> str | None:
    customer = order.get("customer")
    if type(customer) is dict and customer.get("id"):
        return platform_id(customer["id"], "customer.id")
    email = order.get("email") or order.get("contact_email")
    if type(email) is str and "@" in email:
        return guest_user_id(email, schema_name=schema_name)
    return None


def _shopify_line_items(order: dict[str, Any]) -> dict[Any, tuple[str, int, Decimal | None]]:
    """Line item id → (item id, quantity, total after the line's discounts)."""
    lines = {}
    for index, line in enumerate(_list(order, "line_items")):
        line = _object(line, f"line_items[{index}]")
        if not line.get("product_id"):
            continue  # custom lines and deleted products
        quantity = line.get("quantity") if type(line.get("quantity")) is int else 1
        price = _money(line.get("price"))
        total = None
        if price is not None:
            total = price * quantity - (_money(line.get("total_discount")) or Decimal(0))
        item_id = platform_id(line["product_id"], f"line_items[{index}].product_id")
        lines[line.get("id")] = (item_id, quantity, total)
    return lines


def shopify_refunded_items(refund: dict[str, Any], field: str = "refund_line_items") -> set[str]:
    items = set()
    for index, refund_line in enumerate(_list(refund, field)):
        refund_line = _object(refund_line, f"{field}[{index}]")
        line = refund_line.get("line_item")
        if type(line) is dict and line.get("product_id"):
            items.add(platform_id(line["product_id"], f"{field}[{index}].line_item.product_id"))
    return items


def shopify_order_lines(order: Any, *, schema_name: str, now: datetime) -> OrderLines:
    """Purchases once the order is paid; refunds for the lines of its refunds, and for every
    line once it is cancelled or wholly refunded."""
    order = _object(order, "body")
    order_id = platform_id(order.get("id"), "id")
    state = order.get("financial_status")
    cancelled = bool(order.get("cancelled_at"))
    if state not in SHOPIFY_PAID_STATES and not cancelled:
        return OrderLines(order_id, [], [])
    user_id = shopify_shopper(order, schema_name=schema_name)
    if user_id is None:
        raise PayloadError("customer", "Neither a customer id nor an email.")
    lines = _shopify_line_items(order)
    summed = _summed_lines(lines.values())
    refunded: set[str] = set()
    for index, refund in enumerate(_list(order, "refunds")):
        refunded |= shopify_refunded_items(_object(refund, f"refunds[{index}]"))
    if cancelled or state == "refunded":
        refunded |= set(summed)
    paid_at = (
        _timestamp(order.get("processed_at"), naive_is_utc=False)
        or _timestamp(order.get("created_at"), naive_is_utc=False)
        or now
    )
    undone_at = (
        _timestamp(order.get("cancelled_at"), naive_is_utc=False)
        or _timestamp(order.get("updated_at"), naive_is_utc=False)
        or now
    )
    purchases = []
    if state in SHOPIFY_PAID_STATES:
        purchases = [
            _purchase(user_id, order_id, item_id, total, paid_at)
            for item_id, (_, total) in summed.items()
        ]
    refunds = [_refund(user_id, order_id, item_id, undone_at) for item_id in sorted(refunded)]
    return OrderLines(order_id, purchases, refunds)
