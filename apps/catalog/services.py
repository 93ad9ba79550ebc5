"""Writes on a store's catalog, shoppers and events. Every function works on the current
connection schema (the store's), whoever calls it: the API, the import commands, the seeder."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Literal

import orjson
import redis
from django.db import connection, transaction
from django.utils import timezone

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.billing.quotas import Reservation, ingest_reserve
from apps.catalog import event_sql, live
from apps.catalog.item_validation import (
    ItemRow,
    attributes_problem,
    item_validate,
    items_validate,
)
from apps.catalog.models import Event, Item, Shopper
from apps.catalog.recent import recent_events_push
from apps.catalog.selectors import shopper_data
from apps.catalog.signals import items_changed_on_commit
from apps.catalog.validation import (
    ID_MAX_LENGTH,
    EventRow,
    RowError,
    events_validate,
    id_problem,
)
from apps.core import pii
from apps.core.db.copy import raw_copy
from apps.core.erasure import erase_shopper, tombstone_set
from apps.core.errors import ApplicationError

logger = logging.getLogger(__name__)

IngestSource = Literal["api", "connector", "import", "seed"]


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)
    accepted_by_type: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "errors": [error.as_dict() for error in self.errors],
        }


# --- Events -------------------------------------------------------------------------------------


def _events_write(
    rows: list[EventRow], *, reserve: Callable[[int], Reservation] | None = None
) -> tuple[dict[str, int], dict[str, int]]:
    """Store validated rows; returns the number inserted by type (duplicates excluded), and of
    those the number that happened today (UTC).

    `reserve(n)` (billing) is called once the batch is inserted, with the number of rows it
    stored, and may refuse the whole batch by raising (the transaction then rolls the rows
    back); its reservation is released when the transaction rolls back."""
    nested = connection.in_atomic_block
    reservation: Reservation | None = None
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            staging, params = _events_stage(cursor, rows)
            cursor.execute(event_sql.events_insert(staging), params)
            counted = cursor.fetchall()
            inserted = {kind: count for kind, count, _ in counted}
            today = {kind: count for kind, _, count in counted if count}
            if reserve is not None:
                # Reserved once the rows are in, for exactly those: a refusal raises and the
                # transaction takes them back out.
                stored = sum(inserted.values())
                reservation = reserve(stored)
                reservation.settle(stored)
            if any(row[7] is not None and row[1] is not None for row in rows):
                cursor.execute(event_sql.sessions_link(staging), params)
            cursor.execute(event_sql.shoppers_upsert(staging), params)
            if nested and params is None:
                # No commit will empty the staging table before the caller's next batch.
                cursor.execute("DELETE FROM pg_temp.catalog_event_staging")
    except BaseException:
        if reservation is not None:
            reservation.release()
        raise
    return inserted, today


def _events_stage(cursor, rows: list[EventRow]) -> tuple[str, list[list] | None]:
    """The staging source of a batch and its parameters (see apps.catalog.event_sql): a
    small batch as arrays, one per column; a large one copied into the staging table."""
    if len(rows) <= event_sql.SMALL_BATCH_ROWS:
        return event_sql.STAGING_ROWS, [list(column) for column in zip(*rows, strict=True)]
    cursor.execute(event_sql.STAGING_DDL)
    with raw_copy(cursor, event_sql.STAGING_COPY, event_sql.STAGING_TYPES) as copy:
        write_row = copy.write_row
        for row in rows:
            write_row(row)
    return event_sql.STAGING_TABLE, None


def _ingest_reserve(tenant, amount: int) -> Reservation:
    return ingest_reserve(tenant=tenant, amount=amount)


def _counters_after_commit(schema_name: str, counts: dict[str, int]) -> None:
    day = timezone.now().date()
    try:
        counters = live.event_counters_add(schema_name=schema_name, day=day, counts=counts)
    except redis.RedisError:
        # The events are committed; the live counters are a best-effort view of them.
        logger.warning("live counters not updated: Redis unavailable", exc_info=True)
        return
    live.event_counters_publish(schema_name=schema_name, day=day, counters=counters)


def events_ingest(
    *, rows: list[Any], source: IngestSource = "api", now: datetime | None = None
) -> IngestResult:
    """Validate and store a batch of events in the current store schema.

    `rows` are raw event dicts (API JSON, import lines, seeder data; `timestamp` may also be an
    aware datetime). Valid rows are stored in one transaction: when this returns, they are
    committed (unless the caller holds an outer transaction). Invalid rows are reported in
    `errors` (index, field, message) and not stored. An `event_id` already stored, or repeated
    in the batch, counts as a duplicate and is stored once. Events of items not yet in the
    catalog create hidden stub items. A purchase keeps the item's catalog price of the moment
    (`item_price`: attributed revenue when it has no `value`). Shoppers are created or their
    first/last seen times extended. After commit, the store's live counters of events that
    happened today (a history loaded today is not today's activity) are incremented and pushed
    to its dashboard group. `source` is for logs and metrics; validation is the same for all.
    """
    result = IngestResult()
    valid, result.errors, in_batch_duplicates = events_validate(rows, now=now or timezone.now())
    result.duplicates = in_batch_duplicates
    if not valid:
        return result
    reserve = None
    if source in ("api", "connector"):
        # Billing (events the store sends, directly or through its shop's webhooks): the
        # batch's new events are reserved against the quota in its transaction (429
        # quota_exceeded / 402 payment_overdue: nothing stored), and counted for billing once
        # committed.
        tenant = connection.tenant
        reserve = partial(_ingest_reserve, tenant)
    inserted, happened_today = _events_write(valid, reserve=reserve)
    result.accepted = sum(inserted.values())
    result.duplicates += len(valid) - result.accepted
    result.accepted_by_type = inserted
    if inserted:
        schema_name = connection.schema_name
        if happened_today:
            transaction.on_commit(
                lambda: _counters_after_commit(schema_name, happened_today), robust=True
            )
        transaction.on_commit(lambda: recent_events_push(schema_name, valid), robust=True)
    logger.debug(
        "events ingested",
        extra={"source": source, "accepted": result.accepted, "duplicates": result.duplicates},
    )
    return result


# --- Items --------------------------------------------------------------------------------------
_ITEMS_UPSERT = """
INSERT INTO catalog_item (item_id, title, description, categories, price, in_stock, attributes,
                          is_hidden, is_stub, created_at, updated_at)
SELECT r.item_id, r.title, r.description,
       ARRAY(SELECT c FROM jsonb_array_elements_text(r.categories) WITH ORDINALITY AS t(c, n)
             ORDER BY n),
       r.price, r.in_stock, r.attributes, false, false, now(), now()
FROM jsonb_to_recordset(%s::jsonb) AS r(item_id text, title text, description text,
                                         categories jsonb, price numeric, in_stock boolean,
                                         attributes jsonb)
ORDER BY r.item_id
ON CONFLICT (item_id) DO UPDATE SET
    title = EXCLUDED.title,
    description = EXCLUDED.description,
    categories = EXCLUDED.categories,
    price = EXCLUDED.price,
    in_stock = EXCLUDED.in_stock,
    attributes = EXCLUDED.attributes,
    is_hidden = false,
    is_stub = false,
    updated_at = EXCLUDED.updated_at
RETURNING (xmax = 0) AS created
"""


@dataclass
class ItemsUpsertResult:
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "errors": [error.as_dict() for error in self.errors],
        }


def _items_write(rows: list[ItemRow]) -> tuple[int, int]:
    payload = orjson.dumps(
        [
            {
                "item_id": row.item_id,
                "title": row.title,
                "description": row.description,
                "categories": row.categories,
                "price": None if row.price is None else str(row.price),
                "in_stock": row.in_stock,
                "attributes": row.attributes,
            }
            for row in rows
        ]
    ).decode()
    with connection.cursor() as cursor:
        cursor.execute(_ITEMS_UPSERT, [payload])
        flags = [created for (created,) in cursor.fetchall()]
    created = sum(flags)
    return created, len(flags) - created


@transaction.atomic
def items_upsert(*, rows: list[Any]) -> ItemsUpsertResult:
    """Create or replace items by item_id (full representation: omitted fields take their
    defaults). Valid rows are written in one statement; invalid ones reported per row. An
    upserted item is visible: a stub created by events, or an item deleted earlier, is listed
    again."""
    valid, errors = items_validate(rows)
    result = ItemsUpsertResult(errors=errors)
    if valid:
        result.created, result.updated = _items_write([row for _, row in valid])
        items_changed_on_commit()
    return result


def _fields_error(problems: list[tuple[str, str]]) -> ApplicationError:
    fields: dict[str, list[str]] = {}
    for name, message in problems:
        fields.setdefault(name or "non_field_errors", []).append(message)
    return ApplicationError(
        f"Invalid input in: {', '.join(sorted(fields))}.", code="invalid", fields=fields
    )


@transaction.atomic
def item_upsert(*, item_id: str, data: Any) -> tuple[Item, bool]:
    """Create or replace one item; returns (item, created). Raises ApplicationError (400)
    naming the invalid fields."""
    row = item_validate(data, item_id=item_id)
    if isinstance(row, list):
        raise _fields_error(row)
    created, _ = _items_write([row])
    items_changed_on_commit()
    return Item.objects.get(item_id=item_id), bool(created)


@transaction.atomic
def item_delete(*, item_id: str, actor_api_key=None, request=None) -> Item:
    """Hide an item from recommendations and listings at once; its events are kept. Audited
    as `item.deleted`. Raises ApplicationError 404 for an unknown or already hidden item."""
    item = Item.objects.select_for_update().filter(item_id=item_id, is_hidden=False).first()
    if item is None:
        raise ApplicationError("No such item.", code="not_found", status_code=404)
    item.is_hidden = True
    item.save(update_fields=["is_hidden", "updated_at"])
    items_changed_on_commit()
    audit_record(
        action=AuditAction.ITEM_DELETED,
        actor_api_key=actor_api_key,
        target_type="item",
        target_id=item_id,
        request=request,
    )
    return item


# --- Shoppers -----------------------------------------------------------------------------------
@transaction.atomic
def shopper_attributes_set(*, user_id: str, attributes: Any) -> tuple[Shopper, bool]:
    """Set (replace) a shopper's attributes, creating the shopper if new; (shopper, created)."""
    problems = []
    if message := id_problem(user_id, ID_MAX_LENGTH):
        problems.append(("user_id", message))
    if message := attributes_problem(attributes):
        problems.append(("attributes", message))
    if problems:
        raise _fields_error(problems)
    shopper, created = Shopper.objects.select_for_update().get_or_create(
        user_id=user_id, defaults={"attributes": attributes}
    )
    if not created:
        shopper.attributes = attributes
        shopper.save(update_fields=["attributes", "updated_at"])
    return shopper, created


def shoppers_pii_reencrypt(*, batch_size: int = 1000) -> int:
    """Re-encrypt every shopper's attributes of the current store under the first
    PII_ENCRYPTION_KEYS key (values written before encryption get encrypted); returns how
    many rows were rewritten. Each batch is its own transaction, so it can run on a live
    store."""
    rewritten, last_id = 0, 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, attributes FROM catalog_shopper WHERE id > %s ORDER BY id LIMIT %s "
                "FOR UPDATE",
                [last_id, batch_size],
            )
            rows = cursor.fetchall()
            if not rows:
                return rewritten
            cursor.executemany(
                "UPDATE catalog_shopper SET attributes = %s WHERE id = %s",
                [(pii.reencrypt(value), pk) for pk, value in rows],
            )
        rewritten += len(rows)
        last_id = rows[-1][0]


def shopper_events_erase(user_id: str) -> int:
    """Eraser (apps.core.erasure): every event of the shopper."""
    deleted, _ = Event.objects.filter(user_id=user_id).delete()
    return deleted


def shopper_profile_erase(user_id: str) -> int:
    """Eraser (apps.core.erasure): the shopper's profile (attributes, first/last seen)."""
    deleted, _ = Shopper.objects.filter(user_id=user_id).delete()
    return deleted


@transaction.atomic
def shopper_erase(
    *, user_id: str, actor_api_key=None, actor_label: str = "", request=None
) -> dict[str, int]:
    """GDPR erasure: everything every app registered in `apps.core.erasure` (events, profile,
    cached recommendation lists, served-list log, ...), plus a tombstone so that no model
    trained before now serves the shopper again (apps/core/erasure.py says how it holds).

    Audited as `shopper.erased` with the counts per kind (never contents). Raises
    ApplicationError 404 when nothing is held about `user_id`, 503 when Redis cannot be
    cleared (nothing is erased then: the caller retries)."""
    try:
        erased = erase_shopper(user_id)
        if not any(erased.values()):
            raise ApplicationError(
                "No data is held about this shopper.", code="not_found", status_code=404
            )
        tombstone_set(user_id)
    except redis.RedisError as exc:
        raise ApplicationError(
            "Cached recommendations could not be erased; nothing was erased, retry later.",
            code="unavailable",
            status_code=503,
        ) from exc
    audit_record(
        action=AuditAction.SHOPPER_ERASED,
        actor_api_key=actor_api_key,
        actor_label=actor_label,
        target_type="shopper",
        target_id=user_id,
        details=erased,
        request=request,
    )
    return erased


@transaction.atomic
def shopper_export(
    *, user_id: str, actor_api_key=None, actor_label: str = "", request=None
) -> dict[str, Any]:
    """GDPR access: everything held about the shopper (profile, every event, cached
    recommendations). Audited as `shopper.exported`. 404 when nothing is held."""
    data = shopper_data(user_id=user_id)
    if data is None:
        raise ApplicationError(
            "No data is held about this shopper.", code="not_found", status_code=404
        )
    audit_record(
        action=AuditAction.SHOPPER_EXPORTED,
        actor_api_key=actor_api_key,
        actor_label=actor_label,
        target_type="shopper",
        target_id=user_id,
        details={"events": len(data["events"])},
        request=request,
    )
    return data
