"""What the connector tests expect of a delivery whose ids break the id rule: a product or
order id becomes an item_id / order_id, so the rule applies to it. A NUL is refused by the
mapping, naming the payload's field (PostgreSQL text cannot hold one, not even in the delivery
log); the rest by the catalog's validation, naming the id it maps to."""

from __future__ import annotations

from django_tenants.utils import tenant_context

from apps.billing.selectors import usage_month_to_date
from apps.catalog.models import Event, Item, Shopper
from apps.connectors.models import WebhookDelivery

NUL = "Must not contain NUL characters."
PRINTABLE = "Must contain printable characters only (no control characters or line breaks)."
TOO_LONG = "At most 128 characters."


def assert_nothing_stored(tenant) -> None:
    """No item, event or shopper written, the delivery logged as failed, nothing metered."""
    with tenant_context(tenant):
        assert Item.objects.exclude(item_id="alpha-only").count() == 0
        assert (Event.objects.count(), Shopper.objects.count()) == (0, 0)
        assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["failed"]
    assert usage_month_to_date(tenant)["events_ingested"] == 0
