"""Per-process caches for publishable-key requests, kept off the database like the key rows
(apps.apikeys.cache): the store's allowed origins (answering CORS preflights, which carry no
key) and its decrypted identity verification secret (checking user tokens). Both live for
API_KEY_CACHE_SECONDS; the writes in apps.apikeys.services forget them in this process at
once, other processes within that time."""

from __future__ import annotations

import logging
import threading
import time

from cryptography.fernet import InvalidToken
from django.conf import settings

from apps.apikeys.models import ApiKey, IdentitySecret
from apps.core import pii

logger = logging.getLogger(__name__)

_origins: dict[str, tuple[float, frozenset[str]]] = {}
_secrets: dict[str, tuple[float, bytes | None]] = {}
_lock = threading.Lock()


def store_origins(schema: str) -> frozenset[str]:
    """Every origin some active publishable key of the store (the connection's schema)
    allows."""
    entry = _origins.get(schema)
    if entry is not None and entry[0] > time.monotonic():
        return entry[1]
    rows = ApiKey.objects.filter(kind=ApiKey.Kind.PUBLISHABLE, revoked_at__isnull=True).values_list(
        "allowed_origins", flat=True
    )
    origins = frozenset(origin for row in rows for origin in row)
    with _lock:
        _origins[schema] = (time.monotonic() + settings.API_KEY_CACHE_SECONDS, origins)
    return origins


def origins_forget(schema: str) -> None:
    with _lock:
        _origins.pop(schema, None)


def identity_secret(schema: str) -> bytes | None:
    """The store's identity verification secret, or None before one is generated."""
    entry = _secrets.get(schema)
    if entry is not None and entry[0] > time.monotonic():
        return entry[1]
    row = IdentitySecret.objects.order_by("-created_at").first()
    secret = None
    if row is not None:
        try:
            secret = pii.decrypt(row.encrypted_secret)
        except InvalidToken:
            # Its key left PII_ENCRYPTION_KEYS before `pii_reencrypt` ran: the store must
            # generate a new secret; until then user tokens are refused, never a 500.
            logger.error("identity verification secret undecryptable", extra={"schema": schema})
    with _lock:
        _secrets[schema] = (time.monotonic() + settings.API_KEY_CACHE_SECONDS, secret)
    return secret


def identity_secret_forget(schema: str) -> None:
    with _lock:
        _secrets.pop(schema, None)
