"""Shopper erasure: one registry of everything that keeps data about a store's shopper, and the
tombstone that makes an erased shopper unknown to serving at once.

Every app that stores something keyed by or containing a shopper id registers, in its
`AppConfig.ready()`, how to erase it (`register`), naming the models and Redis key families it
covers. `apps.catalog.services.shopper_erase` calls `erase_shopper`, which runs every eraser in
the caller's transaction and returns the counts per kind for the audit trail. An app that keeps
shopper data outside the catalog also registers how to export it (`register_export`): the
catalog's GDPR export (`shopper_data`) adds each section to what it returns.
`tests/core/test_erasure_registry.py` fails when a model with a shopper-id field or a Redis key
family holding shopper ids is not covered.

The tombstone (`tombstone_set`): a durable row (`ShopperErasure`, public schema, so it survives
Redis loss) plus a field in the store's Redis hash `erased` (user id → erasure time), which the
serving hot path reads in the Redis round trip it already makes. A model version whose training
started before the erasure may still hold the shopper's row: serving treats the shopper as
unknown to it. Versions trained later never saw the erased events (deleted, and excluded by the
training query), so the tombstone no longer applies to them: new events after the erasure start
a fresh history.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from django.db import connection

from apps.core.cache import redis_client, tenant_key

logger = logging.getLogger(__name__)

# Redis key families holding a shopper id (in the key or in its value), relative to the store's
# tenant_key prefix. The one list: an app adding such a family adds it here and registers an
# eraser covering it.
SHOPPER_KEY_FAMILIES: dict[str, str] = {
    # apps.recommendations.cache.list_key: recs:<version id>:u|a:<user id>
    "recommendation-lists": "recs:*:[ua]:{user_id}",
    # apps.catalog.recent.recent_key: the shopper's last events, pushed by ingestion
    "recent-events": "recent:{user_id}",
    # apps.catalog.recent.recent_latest_key: the newest timestamp in that list
    "recent-events-latest": "recent-at:{user_id}",
    # apps.catalog.recent.session_recent_key: a linked session's last events (its shopper's)
    "session-recent-events": "srecent:*",
    # apps.catalog.recent.session_link_key: session id -> the shopper it is linked to
    "session-links": "slink:*",
    # apps.recommendations.cache.fresh_key: a list re-scored with the shopper's recent events
    "fresh-lists": "fresh:[ua]:{user_id}",
    # apps.recommendations.cache.fresh_claim_key: which request is re-scoring that list now
    "fresh-claims": "fresh-claim:[ua]:{user_id}",
    # apps.recommendations.cache.impressions_key: served lists waiting for PostgreSQL
    "impression-buffer": "recs:impressions",
    # apps.merchandising.placing.rotation_key: the list a placement last showed the shopper
    "placement-rotation": "merch:shown:*:u:{user_id}",
    # this module's tombstones (kept on purpose: they are what makes the erasure hold)
    "erasure-tombstones": "erased",
}
# Kept on purpose, never erased: the record of the erasure itself.
KEPT = {
    "core.ShopperErasure": "the tombstone: without it the erased shopper would be served again",
    "erasure-tombstones": "the tombstone's Redis copy, read on the serving hot path",
}

# Field of the tombstone hash that says the hash was loaded from PostgreSQL (a control
# character: never a valid shopper id). Missing: Redis lost the hash, reload it.
TOMBSTONES_READY = "\x00ready"


@dataclass(frozen=True)
class Eraser:
    kind: str
    erase: Callable[[str], int]
    models: tuple[str, ...]
    key_families: tuple[str, ...]


_erasers: dict[str, Eraser] = {}


def register(
    kind: str,
    erase: Callable[[str], int],
    *,
    models: tuple[str, ...] = (),
    key_families: tuple[str, ...] = (),
) -> None:
    """Register how to erase one kind of shopper data: `erase(user_id)` deletes it in the
    current store schema and returns how many records went. Erasers run inside the erasure's
    transaction and raise redis.RedisError when Redis cannot be cleared (the erasure is then
    refused whole)."""
    unknown = set(key_families) - set(SHOPPER_KEY_FAMILIES)
    if unknown:
        raise ValueError(f"Undeclared Redis key families: {sorted(unknown)}")
    _erasers[kind] = Eraser(kind, erase, tuple(models), tuple(key_families))


def erasers() -> list[Eraser]:
    return list(_erasers.values())


def erase_shopper(user_id: str) -> dict[str, int]:
    """Run every registered eraser for `user_id` in the current store; counts per kind."""
    return {eraser.kind: eraser.erase(user_id) for eraser in _erasers.values()}


_exporters: dict[str, Callable[[str], Any]] = {}


def register_export(section: str, export: Callable[[str], Any]) -> None:
    """Register one section of a shopper's GDPR export: `export(user_id)` returns what the app
    holds about the shopper in the current store (empty when nothing)."""
    _exporters[section] = export


def shopper_export(user_id: str) -> dict[str, Any]:
    """Every registered export section for `user_id` in the current store."""
    return {section: export(user_id) for section, export in _exporters.items()}


# --- tombstones ----------------------------------------------------------------------------------
def tombstones_key(schema_name: str | None = None) -> str:
    return tenant_key("erased", schema_name=schema_name)


def tombstone_set(user_id: str, *, now: datetime | None = None) -> datetime:
    """Record the erasure of `user_id` in the current store: PostgreSQL row (in the caller's
    transaction) and Redis hash field. Raises redis.RedisError when Redis is unreachable."""
    from apps.core.models import ShopperErasure

    if now is None:
        # The database's clock, the one that stamps events' received_at: events of a batch
        # that committed after this transaction started count as a fresh history.
        with connection.cursor() as cursor:
            cursor.execute("SELECT now()")
            now = cursor.fetchone()[0]
    ShopperErasure.objects.update_or_create(
        schema_name=connection.schema_name, user_id=user_id, defaults={"erased_at": now}
    )
    tombstones_load(connection.schema_name)
    redis_client().hset(tombstones_key(), user_id, repr(now.timestamp()))
    return now


def tombstones_load(schema_name: str) -> None:
    """Copy the store's tombstones from PostgreSQL into its Redis hash (after Redis lost it),
    marked ready. Raises redis.RedisError."""
    from apps.core.models import ShopperErasure

    key = tombstones_key(schema_name)
    client = redis_client()
    if client.hexists(key, TOMBSTONES_READY):
        return
    mapping = {
        user_id: repr(erased_at.timestamp())
        for user_id, erased_at in ShopperErasure.objects.filter(
            schema_name=schema_name
        ).values_list("user_id", "erased_at")
    }
    mapping[TOMBSTONES_READY] = "1"
    client.hset(key, mapping=mapping)


def tombstone_command(schema_name: str, user_id: str) -> tuple[object, ...]:
    """The Redis command the serving path adds to its round trip; its reply goes to
    `tombstone_from_reply`."""
    return ("HMGET", tombstones_key(schema_name), TOMBSTONES_READY, user_id)


def tombstone_from_reply(schema_name: str, user_id: str, reply: list | None) -> float | None:
    """The erasure time (epoch seconds) of `user_id`, or None. `reply` is the HMGET's answer,
    or None when Redis was unreachable: then PostgreSQL answers (and the hash is reloaded when
    Redis answered without it)."""
    if reply is not None and reply[0] is not None:
        return float(reply[1]) if reply[1] is not None else None
    if reply is not None:
        try:
            tombstones_load(schema_name)
        except redis.RedisError:
            logger.warning("tombstones not reloaded into Redis", exc_info=True)
    return tombstone_from_database(schema_name, user_id)


def tombstone_from_database(schema_name: str, user_id: str) -> float | None:
    from apps.core.models import ShopperErasure

    erased_at = (
        ShopperErasure.objects.filter(schema_name=schema_name, user_id=user_id)
        .values_list("erased_at", flat=True)
        .first()
    )
    return erased_at.timestamp() if erased_at is not None else None
