"""Shopper PII at rest: encrypted with keys from the environment (`PII_ENCRYPTION_KEYS`).

Keys are Fernet keys (AES-128-CBC + HMAC-SHA256, `cryptography`'s MultiFernet): the first
encrypts, every one decrypts. Rotation: put a new key first, run
`manage.py pii_reencrypt` (every store's values re-encrypted under the first key), then remove
the old key. Which fields and why are listed in README ("PII at rest").

Values are stored as Fernet tokens (text starting with "gAAAAA"); a value written before
encryption (plain JSON) is still read, and `pii_reencrypt` or the next write encrypts it.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

TOKEN_PREFIX = "gAAAAA"  # noqa: S105 (how every Fernet token starts: version byte 0x80)


def derived_key(secret: str) -> str:
    """A Fernet key derived from `secret`: used when PII_ENCRYPTION_KEYS is unset, which only
    development and tests allow (production refuses to start without it)."""
    digest = hashlib.sha256(b"shelfsense-pii:" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def configured_keys() -> list[str]:
    """The keys this process uses, first one encrypting."""
    return list(settings.PII_ENCRYPTION_KEYS) or [derived_key(settings.SECRET_KEY)]


@cache
def _fernet() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in configured_keys()])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "PII_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64 "
            "bytes; make one with cryptography.fernet.Fernet.generate_key())."
        ) from exc


def keys_changed() -> None:
    """Forget the loaded keys (tests that change PII_ENCRYPTION_KEYS)."""
    _fernet.cache_clear()


def encrypt(data: bytes) -> str:
    return _fernet().encrypt(data).decode()


def decrypt(token: str) -> bytes:
    """Raises cryptography.fernet.InvalidToken when no configured key opens `token`."""
    return _fernet().decrypt(token.encode())


def reencrypt(token: str) -> str:
    """`token` under the first key (MultiFernet.rotate); a plain value is encrypted."""
    if not token.startswith(TOKEN_PREFIX):
        return encrypt(token.encode())
    return _fernet().rotate(token.encode()).decode()


class EncryptedJSONField(models.TextField):
    """A JSON value stored encrypted (a Fernet token in a text column). Not queryable by
    content, by design."""

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return encrypt(orjson.dumps(value))

    def from_db_value(self, value: str | None, expression, connection) -> Any:
        return self.to_python(value)

    def to_python(self, value: Any) -> Any:
        if value is None or not isinstance(value, str):
            return value
        if value.startswith(TOKEN_PREFIX):
            try:
                return orjson.loads(decrypt(value))
            except InvalidToken as exc:
                raise ImproperlyConfigured(
                    "A PII value cannot be decrypted with PII_ENCRYPTION_KEYS (a key removed "
                    "before `manage.py pii_reencrypt` ran?)."
                ) from exc
        return orjson.loads(value)  # written before encryption: plain JSON
