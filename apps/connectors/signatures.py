"""The platforms' webhook signatures. Both are base64(HMAC-SHA256(secret, raw body)): WooCommerce
in `X-WC-Webhook-Signature` keyed by the webhook's secret, Shopify in `X-Shopify-Hmac-Sha256`
keyed by the app's API secret. Always over the raw bytes received, never re-encoded JSON."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

WOO_SECRET_BYTES = 32


def signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signature_valid(secret: str, body: bytes, header_value: str) -> bool:
    """Constant-time comparison of the expected signature with the header's."""
    if not secret or not header_value:
        return False
    expected = signature(secret, body).encode()
    # Header values arrive as latin-1 text (WSGI): encode back to the bytes sent.
    return hmac.compare_digest(expected, header_value.strip().encode("latin-1", "replace"))


def woo_secret_generate() -> str:
    """A WooCommerce webhook secret: URL-safe characters only (WooCommerce HTML-decodes the
    secret before signing, so `&`, `<`, quotes would sign with another key)."""
    return secrets.token_urlsafe(WOO_SECRET_BYTES)
