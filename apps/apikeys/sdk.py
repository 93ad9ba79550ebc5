"""The browser SDK, served versioned at /sdk/v1/shelfsense.js on every store's host.

The file is static/sdk/v1/shelfsense.js. Its URL is versioned and the answer is cacheable
for a year (`immutable`), so a released v1 never changes; stores may pin it with Subresource
Integrity: `sdk_integrity()` (printed by `manage.py sdk_integrity`) is the `integrity`
attribute's value, and a test keeps README's copy equal to it. Any origin may load it
(Access-Control-Allow-Origin: *: a module script from another origin is fetched with CORS)."""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.views.decorators.http import require_safe

SDK_VERSION = "v1"
ONE_YEAR_SECONDS = 365 * 86400


def sdk_path(version: str = SDK_VERSION) -> Path:
    return Path(settings.BASE_DIR) / "static" / "sdk" / version / "shelfsense.js"


@cache
def sdk_source() -> bytes:
    return sdk_path().read_bytes()


def sdk_integrity(source: bytes | None = None) -> str:
    """The Subresource Integrity value (`sha384-…`) of the served SDK."""
    digest = hashlib.sha384(sdk_source() if source is None else source).digest()
    return f"sha384-{base64.b64encode(digest).decode()}"


@require_safe
def sdk_script(request: HttpRequest) -> HttpResponse:
    etag = f'"{sdk_integrity()}"'
    if request.headers.get("If-None-Match") == etag:
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = HttpResponse(sdk_source(), content_type="text/javascript; charset=utf-8")
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={ONE_YEAR_SECONDS}, immutable"
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    response["X-Content-Type-Options"] = "nosniff"
    return response
