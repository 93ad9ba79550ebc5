"""The key formats: `ss_live_<prefix>_<secret>` (secret keys) and `ss_pub_<prefix>_<secret>`
(publishable keys, apps/apikeys/publishable.py). The prefix (12 hex characters) is stored and
shown; the whole key is stored only as its SHA-256 digest. The secret carries 256 random bits,
so a fast hash is enough (no password stretching needed) and lookups stay cheap."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_MARKER = "ss_live_"
PUBLISHABLE_MARKER = "ss_pub_"
PREFIX_LENGTH = 12


def key_generate(marker: str = KEY_MARKER) -> tuple[str, str]:
    """A new (prefix, full key)."""
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    return prefix, f"{marker}{prefix}_{secrets.token_urlsafe(32)}"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str, marker: str = KEY_MARKER) -> str | None:
    """The prefix of a well-formed key (of the kind `marker` names), else None."""
    if not key.startswith(marker):
        return None
    prefix, sep, secret = key[len(marker) :].partition("_")
    if not sep or len(prefix) != PREFIX_LENGTH or not secret:
        return None
    if any(char not in "0123456789abcdef" for char in prefix):
        return None
    return prefix


def key_matches(key: str, secret_hash: str) -> bool:
    return hmac.compare_digest(key_hash(key), secret_hash)
