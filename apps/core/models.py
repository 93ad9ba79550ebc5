from django.db import models


class ShopperErasure(models.Model):
    """The durable tombstone of an erased shopper of a store (apps/core/erasure.py): kept in
    the public schema, so it survives the loss of Redis and is readable by every store's
    training query. Holds the shopper id and the time only."""

    schema_name = models.CharField(max_length=63)
    user_id = models.CharField(max_length=128)
    erased_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["schema_name", "user_id"], name="shopper_erasure_unique_store_user"
            )
        ]

    def __str__(self) -> str:
        return f"{self.schema_name}:{self.user_id}"
