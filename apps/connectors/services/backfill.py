"""Backfills: a shop's existing products and orders read over its REST API and mapped as the
webhooks map them (the same functions), page by page, each page committed on its own. A re-run
stores nothing twice: items are upserted and a purchase is one per (order, item)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.catalog.services import events_ingest, items_upsert
from apps.connectors import clients, mapping
from apps.connectors.clients import Page

Progress = Callable[[str], None]


@dataclass
class BackfillResult:
    items_created: int = 0
    items_updated: int = 0
    orders: int = 0
    purchases: int = 0
    refunds: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)


def _page_label(kind: str, page: Page) -> str:
    of = f"/{page.total_pages}" if page.total_pages else ""
    return f"{kind}: page {page.number}{of}"


def _items(
    pages: Iterator[Page], to_row: Callable[[Any], dict[str, Any]], removed, result, progress
) -> None:
    for page in pages:
        rows = []
        for product in page.rows:
            try:
                if not removed(product):
                    rows.append(to_row(product))
            except mapping.PayloadError as exc:
                result.errors.append(f"product {product.get('id')!r}: {exc}")
        with transaction.atomic():
            upserted = items_upsert(rows=rows)
        result.items_created += upserted.created
        result.items_updated += upserted.updated
        result.errors += [
            f"product {rows[e.index]['item_id']}: {e.field}: {e.message}" for e in upserted.errors
        ]
        progress(f"{_page_label('products', page)} ({len(page.rows)} read)")


def _orders(
    pages: Iterator[Page], to_lines: Callable[..., mapping.OrderLines], result, progress
) -> None:
    schema_name = connection.schema_name
    for page in pages:
        events = []
        for order in page.rows:
            try:
                lines = to_lines(order, schema_name=schema_name, now=timezone.now())
            except mapping.PayloadError as exc:
                result.errors.append(f"order {order.get('id')!r}: {exc}")
                continue
            result.orders += 1
            events += lines.events
        if events:
            with transaction.atomic():
                ingested = events_ingest(rows=events, source="connector")
            result.purchases += ingested.accepted_by_type.get("purchase", 0)
            result.refunds += ingested.accepted_by_type.get("refund", 0)
            result.duplicates += ingested.duplicates
            result.errors += [
                f"order {events[e.index].get('order_id')}: {e.field}: {e.message}"
                for e in ingested.errors
            ]
        progress(f"{_page_label('orders', page)} ({len(page.rows)} read)")


def woocommerce_backfill(
    *, site_url: str, consumer_key: str, consumer_secret: str, progress: Progress
) -> BackfillResult:
    """Products, then orders that reached processing or completed (and refunded ones, whose
    lines come in refunded), of a WooCommerce site into the current store. Raises
    ApplicationError when the shop cannot be read (what was committed before stays)."""
    site_url = clients.base_url_check(site_url, "site_url")
    auth = {"consumer_key": consumer_key, "consumer_secret": consumer_secret}
    result = BackfillResult()
    _items(
        clients.woo_pages(site_url=site_url, resource="products", **auth),
        mapping.woo_item_row,
        mapping.woo_item_removed,
        result,
        progress,
    )
    _orders(
        clients.woo_pages(
            site_url=site_url, resource="orders", status="processing,completed,refunded", **auth
        ),
        mapping.woo_order_lines,
        result,
        progress,
    )
    return result


def shopify_backfill(
    *, shop_url: str, shop_domain: str, access_token: str, progress: Progress
) -> BackfillResult:
    """Active products, then every order (paid ones bring purchases, refunded lines refunds) of
    a Shopify shop into the current store."""
    shop_url = clients.base_url_check(shop_url, "shop_url")
    result = BackfillResult()
    _items(
        clients.shopify_pages(shop_url=shop_url, resource="products", access_token=access_token),
        lambda product: mapping.shopify_item_row(product, shop_domain=shop_domain),
        mapping.shopify_item_removed,
        result,
        progress,
    )
    _orders(
        clients.shopify_pages(
            shop_url=shop_url, resource="orders", access_token=access_token, status="any"
        ),
        mapping.shopify_order_lines,
        result,
        progress,
    )
    return result
