"""Payloads shaped as the platforms send them: WooCommerce REST API v3 product and order objects
(what its webhooks and `/wp-json/wc/v3/` return) and Shopify Admin REST / webhook objects
(products, orders, refunds, the privacy webhooks), trimmed of fields ShelfSense never reads only
where they are long lists of the same kind. Dates are relative to now so that events stay
within the ingestion window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def _woo_date(days_ago: float) -> tuple[str, str]:
    """(site-local, GMT) as WooCommerce writes them: ISO 8601 without a zone."""
    gmt = datetime.now(UTC) - timedelta(days=days_ago)
    local = gmt + timedelta(hours=2)
    return local.strftime("%Y-%m-%dT%H:%M:%S"), gmt.strftime("%Y-%m-%dT%H:%M:%S")


def woo_product(product_id: int = 794, **overrides: Any) -> dict[str, Any]:
    created, created_gmt = _woo_date(30)
    product = {
        "id": product_id,
        "name": "Premium Quality",
        "slug": "premium-quality",
        "permalink": f"https://shop.example/product/premium-quality-{product_id}/",
        "date_created": created,
        "date_created_gmt": created_gmt,
        "date_modified": created,
        "date_modified_gmt": created_gmt,
        "type": "simple",
        "status": "publish",
        "featured": False,
        "catalog_visibility": "visible",
        "description": "<p>Pellentesque habitant morbi tristique senectus et netus.</p>\n",
        "short_description": "<p>Pellentesque habitant morbi tristique.</p>\n",
        "sku": f"PQ-{product_id}",
        "price": "21.99",
        "regular_price": "21.99",
        "sale_price": "",
        "date_on_sale_from": None,
        "date_on_sale_to": None,
        "price_html": '<span class="woocommerce-Price-amount amount">$21.99</span>',
        "on_sale": False,
        "purchasable": True,
        "total_sales": 0,
        "virtual": False,
        "downloadable": False,
        "tax_status": "taxable",
        "tax_class": "",
        "manage_stock": False,
        "stock_quantity": None,
        "stock_status": "instock",
        "backorders": "no",
        "backorders_allowed": False,
        "backordered": False,
        "sold_individually": False,
        "weight": "",
        "dimensions": {"length": "", "width": "", "height": ""},
        "shipping_required": True,
        "shipping_taxable": True,
        "shipping_class": "",
        "shipping_class_id": 0,
        "reviews_allowed": True,
        "average_rating": "0.00",
        "rating_count": 0,
        "related_ids": [53, 40, 56],
        "upsell_ids": [],
        "cross_sell_ids": [],
        "parent_id": 0,
        "purchase_note": "",
        "categories": [
            {"id": 9, "name": "Clothing", "slug": "clothing"},
            {"id": 14, "name": "T-shirts", "slug": "t-shirts"},
        ],
        "tags": [],
        "images": [
            {
                "id": 792,
                "date_created": created,
                "date_created_gmt": created_gmt,
                "src": "https://shop.example/wp-content/uploads/2017/03/T_2_front-4.jpg",
                "name": "",
                "alt": "",
            }
        ],
        "attributes": [],
        "default_attributes": [],
        "variations": [],
        "grouped_products": [],
        "menu_order": 0,
        "meta_data": [],
        "_links": {"self": [{"href": f"https://shop.example/wp-json/wc/v3/products/{product_id}"}]},
    }
    product.update(overrides)
    return product


def _woo_line(line_id: int, product_id: int, quantity: int, total: str, variation_id: int = 0):
    return {
        "id": line_id,
        "name": "Woo Single #1",
        "product_id": product_id,
        "variation_id": variation_id,
        "quantity": quantity,
        "tax_class": "",
        "subtotal": total,
        "subtotal_tax": "0.00",
        "total": total,
        "total_tax": "0.00",
        "taxes": [],
        "meta_data": [],
        "sku": "",
        "price": float(total) / quantity,
    }


def woo_order(
    order_id: int = 727,
    *,
    status: str = "processing",
    customer_id: int = 25,
    email: str = "john.doe@example.com",
    lines: list[tuple[int, int, str]] | None = None,
) -> dict[str, Any]:
    """`lines`: (product id, quantity, line total)."""
    created, created_gmt = _woo_date(2)
    paid, paid_gmt = _woo_date(1.9)
    lines = lines if lines is not None else [(794, 2, "43.98"), (93, 1, "9.00")]
    return {
        "id": order_id,
        "parent_id": 0,
        "number": str(order_id),
        "order_key": "wc_order_58d2d042d1d",
        "created_via": "checkout",
        "version": "8.5.0",
        "status": status,
        "currency": "USD",
        "date_created": created,
        "date_created_gmt": created_gmt,
        "date_modified": paid,
        "date_modified_gmt": paid_gmt,
        "discount_total": "0.00",
        "discount_tax": "0.00",
        "shipping_total": "10.00",
        "shipping_tax": "0.00",
        "cart_tax": "1.35",
        "total": "29.35",
        "total_tax": "1.35",
        "prices_include_tax": False,
        "customer_id": customer_id,
        "customer_ip_address": "",
        "customer_user_agent": "",
        "customer_note": "",
        "billing": {
            "first_name": "John",
            "last_name": "Doe",
            "company": "",
            "address_1": "969 Market",
            "address_2": "",
            "city": "San Francisco",
            "state": "CA",
            "postcode": "94103",
            "country": "US",
            "email": email,
            "phone": "(555) 555-5555",
        },
        "shipping": {
            "first_name": "John",
            "last_name": "Doe",
            "company": "",
            "address_1": "969 Market",
            "address_2": "",
            "city": "San Francisco",
            "state": "CA",
            "postcode": "94103",
            "country": "US",
        },
        "payment_method": "bacs",
        "payment_method_title": "Direct Bank Transfer",
        "transaction_id": "",
        "date_paid": paid if status in ("processing", "completed") else None,
        "date_paid_gmt": paid_gmt if status in ("processing", "completed") else None,
        "date_completed": None,
        "date_completed_gmt": None,
        "cart_hash": "",
        "meta_data": [],
        "line_items": [
            _woo_line(300 + index, product_id, quantity, total)
            for index, (product_id, quantity, total) in enumerate(lines)
        ],
        "tax_lines": [],
        "shipping_lines": [
            {
                "id": 317,
                "method_title": "Flat Rate",
                "method_id": "flat_rate",
                "total": "10.00",
                "total_tax": "0.00",
                "taxes": [],
                "meta_data": [],
            }
        ],
        "fee_lines": [],
        "coupon_lines": [],
        "refunds": [],
        "_links": {"self": [{"href": f"https://shop.example/wp-json/wc/v3/orders/{order_id}"}]},
    }


# --- Shopify -------------------------------------------------------------------------------------
def _shopify_date(days_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S-05:00")


def shopify_product(product_id: int = 632910392, **overrides: Any) -> dict[str, Any]:
    product = {
        "id": product_id,
        "title": "IPod Nano - 8GB",
        "body_html": "<p>It's the small iPod with <em>one very big idea</em>: Video.</p>",
        "vendor": "Apple",
        "product_type": "Cult Products",
        "created_at": _shopify_date(40),
        "handle": "ipod-nano",
        "updated_at": _shopify_date(1),
        "published_at": _shopify_date(40),
        "template_suffix": None,
        "published_scope": "global",
        "tags": "Emotive, Flash Memory, MP3, Music",
        "status": "active",
        "admin_graphql_api_id": f"gid://shopify/Product/{product_id}",
        "variants": [
            {
                "id": 808950810,
                "product_id": product_id,
                "title": "Pink",
                "price": "199.00",
                "sku": "IPOD2008PINK",
                "position": 1,
                "inventory_policy": "continue",
                "compare_at_price": None,
                "fulfillment_service": "manual",
                "inventory_management": "shopify",
                "option1": "Pink",
                "option2": None,
                "option3": None,
                "taxable": True,
                "barcode": "1234_pink",
                "grams": 567,
                "weight": 1.25,
                "weight_unit": "lb",
                "inventory_item_id": 808950810,
                "inventory_quantity": 10,
                "old_inventory_quantity": 10,
                "requires_shipping": True,
                "admin_graphql_api_id": "gid://shopify/ProductVariant/808950810",
            },
            {
                "id": 49148385,
                "product_id": product_id,
                "title": "Red",
                "price": "189.00",
                "sku": "IPOD2008RED",
                "position": 2,
                "inventory_policy": "deny",
                "fulfillment_service": "manual",
                "inventory_management": "shopify",
                "option1": "Red",
                "taxable": True,
                "grams": 567,
                "inventory_quantity": 20,
                "requires_shipping": True,
                "admin_graphql_api_id": "gid://shopify/ProductVariant/49148385",
            },
        ],
        "options": [{"id": 594680422, "product_id": product_id, "name": "Color", "position": 1}],
        "images": [
            {
                "id": 850703190,
                "product_id": product_id,
                "position": 1,
                "alt": None,
                "width": 123,
                "height": 456,
                "src": "https://cdn.shopify.com/s/files/1/0005/4838/0009/products/ipod-nano.png",
                "variant_ids": [],
            }
        ],
        "image": {
            "id": 850703190,
            "product_id": product_id,
            "position": 1,
            "src": "https://cdn.shopify.com/s/files/1/0005/4838/0009/products/ipod-nano.png",
        },
    }
    product.update(overrides)
    return product


def _shopify_line(line_id: int, product_id: int, quantity: int, price: str, discount: str = "0.00"):
    return {
        "id": line_id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
        "fulfillable_quantity": quantity,
        "fulfillment_service": "manual",
        "fulfillment_status": None,
        "gift_card": False,
        "grams": 200,
        "name": "IPod Nano - 8gb - green",
        "price": price,
        "price_set": {
            "shop_money": {"amount": price, "currency_code": "USD"},
            "presentment_money": {"amount": price, "currency_code": "USD"},
        },
        "product_exists": True,
        "product_id": product_id,
        "properties": [],
        "quantity": quantity,
        "requires_shipping": True,
        "sku": "IPOD2008GREEN",
        "taxable": True,
        "title": "IPod Nano - 8gb",
        "total_discount": discount,
        "variant_id": 39072856,
        "variant_title": "green",
        "vendor": None,
        "tax_lines": [],
        "discount_allocations": [],
    }


def shopify_order(
    order_id: int = 450789469,
    *,
    financial_status: str = "paid",
    customer_id: int | None = 207119551,
    email: str = "bob.norman@mail.example.com",
    lines: list[tuple[int, int, int, str]] | None = None,
    cancelled: bool = False,
    refunds: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`lines`: (line item id, product id, quantity, unit price)."""
    lines = lines if lines is not None else [(466157049, 632910392, 1, "199.00")]
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "app_id": None,
        "browser_ip": "203.0.113.7",
        "buyer_accepts_marketing": False,
        "cancel_reason": "customer" if cancelled else None,
        "cancelled_at": _shopify_date(0.5) if cancelled else None,
        "cart_token": "68778783ad298f1c80c3bafcddeea02f",
        "checkout_id": 901414060,
        "closed_at": None,
        "confirmed": True,
        "contact_email": email,
        "created_at": _shopify_date(2),
        "currency": "USD",
        "current_total_price": "199.00",
        "email": email,
        "financial_status": financial_status,
        "fulfillment_status": None,
        "name": "#1001",
        "note": None,
        "number": 1,
        "order_number": 1001,
        "processed_at": _shopify_date(1.9),
        "source_name": "web",
        "subtotal_price": "199.00",
        "tags": "",
        "test": False,
        "total_discounts": "0.00",
        "total_price": "199.00",
        "total_tax": "0.00",
        "updated_at": _shopify_date(0.5),
        "billing_address": {
            "first_name": "Bob",
            "address1": "Chestnut Street 92",
            "phone": "+1(502)-459-2181",
            "city": "Louisville",
            "zip": "40202",
            "province": "Kentucky",
            "country": "United States",
            "last_name": "Norman",
            "country_code": "US",
            "province_code": "KY",
        },
        "customer": (
            {
                "id": customer_id,
                "email": email,
                "created_at": _shopify_date(100),
                "updated_at": _shopify_date(2),
                "first_name": "Bob",
                "last_name": "Norman",
                "state": "disabled",
                "verified_email": True,
                "currency": "USD",
                "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
            }
            if customer_id is not None
            else None
        ),
        "line_items": [
            _shopify_line(line_id, product_id, quantity, price)
            for line_id, product_id, quantity, price in lines
        ],
        "refunds": refunds or [],
        "shipping_lines": [],
    }


def shopify_refund(
    *, order_id: int = 450789469, line_item_id: int = 466157049, product_id: int = 632910392
) -> dict[str, Any]:
    return {
        "id": 509562969,
        "order_id": order_id,
        "created_at": _shopify_date(0.2),
        "note": "it broke during shipping",
        "user_id": 548380009,
        "processed_at": _shopify_date(0.2),
        "restock": True,
        "duties": [],
        "admin_graphql_api_id": "gid://shopify/Refund/509562969",
        "refund_line_items": [
            {
                "id": 104689539,
                "quantity": 1,
                "line_item_id": line_item_id,
                "location_id": 487838322,
                "restock_type": "legacy_restock",
                "subtotal": 195.66,
                "total_tax": 3.98,
                "line_item": _shopify_line(line_item_id, product_id, 1, "199.00"),
            }
        ],
        "transactions": [],
        "order_adjustments": [],
    }


def shopify_customer_payload(customer_id: int, email: str, *, data_request_id: int | None = None):
    payload = {
        "shop_id": 954889,
        "shop_domain": "alpha-shop.myshopify.com",
        "customer": {"id": customer_id, "email": email, "phone": "555-625-1199"},
    }
    if data_request_id is None:
        payload["orders_to_redact"] = [299938, 280263, 220458]
    else:
        payload["orders_requested"] = [299938, 280263, 220458]
        payload["data_request"] = {"id": data_request_id}
    return payload


def shopify_shop_redact() -> dict[str, Any]:
    return {"shop_id": 954889, "shop_domain": "alpha-shop.myshopify.com"}
