"""Reading a shop's REST API page by page (the backfills): WooCommerce REST API v3 with its
consumer key and secret (HTTP basic auth; pages counted by `X-WP-TotalPages`) and Shopify's
Admin REST API with an access token (cursor pages linked by the `Link` header)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit
from urllib.request import Request, urlopen

import orjson

from apps.core.errors import ApplicationError

TIMEOUT_SECONDS = 30
WOO_PAGE_SIZE = 100
SHOPIFY_PAGE_SIZE = 250
SHOPIFY_API_VERSION = "2025-01"
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    number: int
    total_pages: int | None


def base_url_check(url: str, field: str) -> str:
    """The shop's base URL without a trailing slash. Credentials travel in every request, so
    plain HTTP is refused except to this machine (local shops and tests)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ApplicationError(
            "Must be an absolute http(s) URL.", fields={field: ["Must be an absolute URL."]}
        )
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ApplicationError(
            "Must use https.", fields={field: ["Must use https (credentials are sent)."]}
        )
    return url.rstrip("/")


def _get(url: str, headers: dict[str, str]) -> tuple[Any, Any]:
    request = Request(url, headers={"Accept": "application/json", **headers})  # noqa: S310
    try:
        with urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (checked scheme)
            return orjson.loads(response.read()), response.headers
    except HTTPError as exc:
        raise ApplicationError(
            f"The shop answered {exc.code} to {urlsplit(url).path}.",
            code="shop_error",
            status_code=502,
        ) from exc
    except (URLError, TimeoutError, OSError) as exc:
        raise ApplicationError(
            f"The shop could not be reached: {exc}.", code="shop_unreachable", status_code=502
        ) from exc
    except orjson.JSONDecodeError as exc:
        raise ApplicationError(
            "The shop answered something that is not JSON.", code="shop_error", status_code=502
        ) from exc


def woo_pages(
    *, site_url: str, resource: str, consumer_key: str, consumer_secret: str, **params: str
) -> Iterator[Page]:
    """Every page of `/wp-json/wc/v3/<resource>` (products, orders), oldest first."""
    token = base64.b64encode(f"{consumer_key}:{consumer_secret}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    number, total = 1, None
    while total is None or number <= total:
        query = urlencode(
            {"per_page": WOO_PAGE_SIZE, "page": number, "orderby": "id", "order": "asc", **params}
        )
        rows, response_headers = _get(f"{site_url}/wp-json/wc/v3/{resource}?{query}", headers)
        total = int(response_headers.get("X-WP-TotalPages") or 1)
        if type(rows) is not list:
            raise ApplicationError(
                "The shop answered a page that is not a list.", code="shop_error"
            )
        yield Page(rows=rows, number=number, total_pages=total)
        if not rows:
            return
        number += 1


def shopify_pages(
    *, shop_url: str, resource: str, access_token: str, **params: str
) -> Iterator[Page]:
    """Every page of `/admin/api/<version>/<resource>.json` (products, orders), following the
    `Link: <...>; rel="next"` cursor."""
    headers = {"X-Shopify-Access-Token": access_token}
    query = urlencode({"limit": SHOPIFY_PAGE_SIZE, **params})
    url: str | None = f"{shop_url}/admin/api/{SHOPIFY_API_VERSION}/{resource}.json?{query}"
    number = 1
    while url:
        body, response_headers = _get(url, headers)
        rows = body.get(resource) if type(body) is dict else None
        if type(rows) is not list:
            raise ApplicationError(f"The shop answered without `{resource}`.", code="shop_error")
        yield Page(rows=rows, number=number, total_pages=None)
        match = _NEXT_LINK.search(response_headers.get("Link") or "")
        url = match.group(1) if match else None
        if url is not None:
            # The cursor link must stay on the shop: the token goes with it.
            base_url_check(url, "Link")
            if urlsplit(url).netloc != urlsplit(shop_url).netloc:
                raise ApplicationError(
                    "The shop's next-page link leaves the shop.", code="shop_error"
                )
        number += 1
