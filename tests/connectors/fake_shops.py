"""Local fake shops served over real HTTP on 127.0.0.1 (a random port), so the backfills do
their real requests: a WooCommerce site's REST API v3 (`/wp-json/wc/v3/products|orders`, basic
auth with a consumer key and secret, `per_page`/`page`, `X-WP-Total` and `X-WP-TotalPages`,
order `status` filter as a comma list) and a Shopify shop's Admin REST API
(`/admin/api/<version>/products.json|orders.json`, `X-Shopify-Access-Token`, `limit`, cursor
pages by `page_info` linked with `Link: <...>; rel="next"`). Wrong credentials are answered 401
with each platform's error body. Every request is logged."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

WOO_KEY = "ck_4d5e6f0a1b2c3d4e5f60718293a4b5c6d7e8f901"
WOO_SECRET = "cs_0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6"
SHOPIFY_TOKEN = "shpat_fake_0123456789abcdef0123456789ab"


@dataclass
class FakeShopState:
    products: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)


class _Server:
    def __init__(self, handler_class) -> None:
        self.state = FakeShopState()
        fake = self

        class Handler(handler_class):
            shop = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    shop: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _WooHandler(_Handler):
    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        self.shop.state.requests.append((parts.path, query))
        expected = base64.b64encode(f"{WOO_KEY}:{WOO_SECRET}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            self._json(
                401,
                {
                    "code": "woocommerce_rest_cannot_view",
                    "message": "Sorry, you cannot list resources.",
                    "data": {"status": 401},
                },
            )
            return
        resource = parts.path.removeprefix("/wp-json/wc/v3/")
        if resource == "products":
            rows = self.shop.state.products
        elif resource == "orders":
            rows = self.shop.state.orders
            if "status" in query:
                wanted = set(query["status"][0].split(","))
                rows = [order for order in rows if order["status"] in wanted]
        else:
            self._json(404, {"code": "rest_no_route", "message": "No route was found."})
            return
        per_page = int(query.get("per_page", ["10"])[0])
        page = int(query.get("page", ["1"])[0])
        total_pages = max(1, -(-len(rows) // per_page))
        chunk = rows[(page - 1) * per_page : page * per_page]
        self._json(
            200,
            chunk,
            {"X-WP-Total": str(len(rows)), "X-WP-TotalPages": str(total_pages)},
        )


class _ShopifyHandler(_Handler):
    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        self.shop.state.requests.append((parts.path, query))
        if self.headers.get("X-Shopify-Access-Token") != SHOPIFY_TOKEN:
            self._json(
                401,
                {
                    "errors": "[API] Invalid API key or access token (unrecognized login or "
                    "wrong password)"
                },
            )
            return
        resource = parts.path.rsplit("/", 1)[-1].removesuffix(".json")
        rows = {"products": self.shop.state.products, "orders": self.shop.state.orders}.get(
            resource
        )
        if rows is None:
            self._json(404, {"errors": "Not Found"})
            return
        limit = int(query.get("limit", ["50"])[0])
        # page_info: an opaque cursor; here the offset, base64-encoded as Shopify's look.
        cursor = query.get("page_info", [""])[0]
        offset = int(base64.urlsafe_b64decode(cursor).decode()) if cursor else 0
        chunk = rows[offset : offset + limit]
        headers = {}
        if offset + limit < len(rows):
            next_cursor = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
            next_query = urlencode({"limit": limit, "page_info": next_cursor})
            headers["Link"] = f'<{self.shop.url}{parts.path}?{next_query}>; rel="next"'
        self._json(200, {resource: chunk}, headers)


class FakeWooCommerce(_Server):
    def __init__(self) -> None:
        super().__init__(_WooHandler)


class FakeShopify(_Server):
    def __init__(self) -> None:
        super().__init__(_ShopifyHandler)
