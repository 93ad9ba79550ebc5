"""Shopify's mandatory privacy webhooks, mapped onto the platform's GDPR tools:

- `customers/data_request` → the shopper's export (`apps.catalog.services.shopper_export`),
  kept encrypted as a `ShopperDataRequest` for the store owner to download from Settings →
  Integrations and hand to the customer;
- `customers/redact` → the shopper's erasure (`shopper_erase`: every registered eraser and the
  tombstone);
- `shop/redact` → the erasure of every shopper of the store; the store, its catalog and its
  connection stay.

A Shopify customer is known here by their customer id and, for guest checkouts, by the hashed
email (`mapping.guest_user_id`): both are covered. Each webhook writes one `connector.*` audit
row (counts, never contents) next to the per-shopper `shopper.exported` / `shopper.erased`
rows; the actor is "shopify".
"""

from __future__ import annotations

from typing import Any

import orjson
from django.db import connection

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.catalog.models import Shopper
from apps.catalog.services import shopper_erase, shopper_export
from apps.connectors import mapping
from apps.connectors.models import Platform, ShopperDataRequest
from apps.core.errors import ApplicationError

ACTOR = "shopify"


def _customer_user_ids(payload: dict[str, Any]) -> list[str]:
    customer = payload.get("customer")
    if type(customer) is not dict:
        raise mapping.PayloadError("customer", "Must be a JSON object.")
    user_ids = []
    if customer.get("id"):
        user_ids.append(mapping.platform_id(customer["id"], "customer.id"))
    email = customer.get("email")
    if type(email) is str and "@" in email:
        user_ids.append(mapping.guest_user_id(email, schema_name=connection.schema_name))
    if not user_ids:
        raise mapping.PayloadError("customer", "Neither an id nor an email.")
    return user_ids


def _erase(user_id: str) -> bool:
    try:
        shopper_erase(user_id=user_id, actor_label=ACTOR)
    except ApplicationError as exc:
        if exc.status_code != 404:
            raise
        return False
    return True


def customer_data_request(payload: dict[str, Any], topic: str, store) -> dict[str, Any]:
    request_id = payload.get("data_request", {})
    request_id = str(request_id.get("id", ""))[:128] if type(request_id) is dict else ""
    found = 0
    for user_id in _customer_user_ids(payload):
        try:
            export = shopper_export(user_id=user_id, actor_label=ACTOR)
        except ApplicationError as exc:
            if exc.status_code != 404:
                raise
            continue
        ShopperDataRequest.objects.create(
            platform=Platform.SHOPIFY,
            platform_request_id=request_id,
            user_id=user_id,
            export=orjson_safe(export),
        )
        found += 1
    audit_record(
        action=AuditAction.CONNECTOR_DATA_REQUESTED,
        actor_label=ACTOR,
        target_type="connector",
        target_id=Platform.SHOPIFY,
        details={"data_request": request_id, "shoppers_found": found},
    )
    return {"shoppers_exported": found}


def customer_redact(payload: dict[str, Any], topic: str, store) -> dict[str, Any]:
    erased = sum(_erase(user_id) for user_id in _customer_user_ids(payload))
    audit_record(
        action=AuditAction.CONNECTOR_CUSTOMER_REDACTED,
        actor_label=ACTOR,
        target_type="connector",
        target_id=Platform.SHOPIFY,
        details={"shoppers_erased": erased},
    )
    return {"shoppers_erased": erased}


def shop_redact(payload: dict[str, Any], topic: str, store) -> dict[str, Any]:
    """Every shopper of the store, one erasure each (in the delivery's transaction: a failure
    erases nothing and Shopify retries)."""
    user_ids = list(Shopper.objects.order_by("id").values_list("user_id", flat=True))
    erased = sum(_erase(user_id) for user_id in user_ids)
    requests, _ = ShopperDataRequest.objects.all().delete()
    audit_record(
        action=AuditAction.CONNECTOR_SHOP_REDACTED,
        actor_label=ACTOR,
        target_type="connector",
        target_id=Platform.SHOPIFY,
        details={"shoppers_erased": erased, "data_requests_deleted": requests},
    )
    return {"shoppers_erased": erased}


def shopper_data_requests_erase(user_id: str) -> int:
    """Eraser (apps.core.erasure): the data requests answered for the shopper."""
    deleted, _ = ShopperDataRequest.objects.filter(user_id=user_id).delete()
    return deleted


def orjson_safe(value: Any) -> Any:
    """The export as plain JSON values (datetimes and decimals as text)."""
    return orjson.loads(orjson.dumps(value, default=str))
