"""Indexes for the dashboard's catalog and shopper lists, built concurrently: stores keep
ingesting and answering while they build (deploy/MIGRATIONS.md). Index operations only, so
a failure half-way leaves at most an invalid index to drop."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("catalog", "0007_event_refund_and_order_line_unique"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="item",
            index=models.Index(
                condition=models.Q(("is_hidden", False)), fields=["title", "id"], name="item_title"
            ),
        ),
        AddIndexConcurrently(
            model_name="item",
            index=models.Index(
                models.OrderBy(models.F("updated_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                condition=models.Q(("is_hidden", False)),
                name="item_updated",
            ),
        ),
        AddIndexConcurrently(
            model_name="shopper",
            index=models.Index(
                models.OrderBy(models.F("last_seen_at"), descending=True, nulls_last=True),
                models.OrderBy(models.F("id"), descending=True),
                name="shopper_last_seen",
            ),
        ),
    ]
