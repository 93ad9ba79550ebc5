"""Signatures of outgoing webhooks.

Header: `ShelfSense-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>`.
Receivers verify with the snippet in the README (Notifications → Verifying webhooks); the tests
run that snippet against deliveries made by this module.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "ShelfSense-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a label, not a secret)


def webhook_secret_generate() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature_header(*, secret: str, body: str, timestamp: int) -> str:
    """The header value for `body` (the exact text sent) signed at `timestamp`."""
    signed = f"{timestamp}.{body}".encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
