"""The tamper-evident hash chain: each row's hash covers the previous row's hash and the row's
own canonical content, so altering, inserting or deleting any row breaks every later link."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC
from typing import Any

GENESIS_HASH = "0" * 64

# The fields a hash covers, in this order. Never change without a chain migration.
CHAINED_FIELDS = (
    "occurred_at",
    "action",
    "actor_type",
    "actor_user_id",
    "actor_api_key_id",
    "actor_label",
    "target_type",
    "target_id",
    "details",
    "ip",
    "user_agent",
    "request_id",
)


def canonical_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """Details exactly as PostgreSQL's jsonb will hand them back (plain JSON types), so the
    hash computed before the insert matches the one recomputed from the stored row."""
    return json.loads(json.dumps(details or {}, default=str))


def canonical_content(row: Any) -> bytes:
    values: dict[str, Any] = {}
    for name in CHAINED_FIELDS:
        value = getattr(row, name)
        if name == "occurred_at":
            value = value.astimezone(UTC).isoformat(timespec="microseconds")
        values[name] = value
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, row: Any) -> str:
    digest = hashlib.sha256()
    digest.update(prev_hash.encode())
    digest.update(b"\n")
    digest.update(canonical_content(row))
    return digest.hexdigest()
