from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex, GinIndex
from django.db import models

from apps.core.pii import EncryptedJSONField


class ItemQuerySet(models.QuerySet):
    def listed(self) -> "ItemQuerySet":
        """The store's catalog as it sent it: not deleted, not stubs created by events."""
        return self.filter(is_hidden=False, is_stub=False)


class Item(models.Model):
    """A catalog item of this store, keyed by the store's own id."""

    item_id = models.CharField(max_length=128, unique=True)
    title = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    categories = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    in_stock = models.BooleanField(default=True)
    attributes = models.JSONField(default=dict, blank=True)
    # Deleted through the API: hidden from recommendations at once, history kept.
    is_hidden = models.BooleanField(default=False)
    # Created by an event before the store sent the item (an id and nothing else): recommended
    # like any item, but not listed as catalog until the store sends it. A database default, so
    # the previous release's inserts keep working while stores migrate.
    is_stub = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ItemQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            GinIndex(fields=["categories"], name="item_categories_gin"),
            # The dashboard's catalog list (by title) and newest items: read in index order
            # instead of sorting the whole catalog on every page.
            models.Index(
                fields=["title", "id"], condition=models.Q(is_hidden=False), name="item_title"
            ),
            models.Index(
                models.F("updated_at").desc(),
                models.F("id").desc(),
                condition=models.Q(is_hidden=False),
                name="item_updated",
            ),
        ]

    def __str__(self) -> str:
        return self.item_id


class Shopper(models.Model):
    """A store's shopper, keyed by the store's own id; created implicitly by events."""

    user_id = models.CharField(max_length=128, unique=True)
    # Personal data the store sends: encrypted at rest (apps/core/pii.py), never queried.
    attributes = EncryptedJSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The dashboard's shopper list, most recently seen first (never-seen last).
            models.Index(
                models.F("last_seen_at").desc(nulls_last=True),
                models.F("id").desc(),
                name="shopper_last_seen",
            ),
        ]

    def __str__(self) -> str:
        return self.user_id


class Event(models.Model):
    """One shopper interaction. Append-only and high-volume: keyed by the store's own user and
    item ids (no foreign keys to look up on insert), indexed for reads by (user, time) and
    (item, time) and for training scans by time."""

    class Type(models.TextChoices):
        VIEW = "view", "View"
        ADD_TO_CART = "add_to_cart", "Add to cart"
        PURCHASE = "purchase", "Purchase"
        RATING = "rating", "Rating"
        CLICK = "click", "Click"
        DISMISS = "dismiss", "Not interested"
        # Undoes the purchase of the same (order_id, item_id): out of revenue and training.
        REFUND = "refund", "Refund"

    # NULL, not "": events without a client id are never deduplicated (partial unique index).
    event_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    # NULL: an anonymous visitor's event, known by its `session_id` only.
    user_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    item_id = models.CharField(max_length=128)
    type = models.CharField(max_length=16, choices=Type.choices)
    value = models.FloatField(null=True, blank=True)
    timestamp = models.DateTimeField()
    recommendation_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # Purchases: the item's catalog price when the event was stored (attributed revenue uses
    # `value` when the store sends one, else this).
    item_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # The store's browsing session (anonymous visitors, and signed-in shoppers' sessions, which
    # SessionLink maps to the shopper) and, on purchases, the order (basket) it belongs to.
    session_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    order_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event_id"],
                condition=models.Q(event_id__isnull=False),
                name="event_unique_client_event_id",
            ),
            # One purchase rule: an order line is purchased (and refunded) once, whoever
            # reports it and however often (README, "One purchase rule").
            models.UniqueConstraint(
                fields=["order_id", "item_id", "type"],
                condition=models.Q(order_id__isnull=False, type__in=["purchase", "refund"]),
                name="event_unique_order_line",
            ),
        ]
        indexes = [
            models.Index(fields=["user_id", "timestamp"], name="event_user_time"),
            models.Index(fields=["item_id", "timestamp"], name="event_item_time"),
            # Training scans by time. Events arrive in roughly time order, so a BRIN index
            # serves range scans at a fraction of a btree's cost per insert.
            BrinIndex(fields=["timestamp"], name="event_time_brin", autosummarize=True),
            models.Index(
                fields=["recommendation_id"],
                condition=models.Q(recommendation_id__isnull=False),
                name="event_recommendation",
            ),
            models.Index(
                fields=["session_id", "timestamp"],
                condition=models.Q(session_id__isnull=False),
                name="event_session_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.type} {self.item_id}"


class SessionLink(models.Model):
    """A browsing session known to belong to a shopper: written when an event carries both its
    `session_id` and a `user_id`. The session's anonymous events then count as the shopper's
    (fresh lists, erasure) without rewriting them. A session belongs to the first shopper seen
    with it: a later event pairing it with another user id does not move it."""

    session_id = models.CharField(max_length=128, unique=True)
    user_id = models.CharField(max_length=128, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.session_id} -> {self.user_id}"
