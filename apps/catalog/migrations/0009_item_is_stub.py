"""Items created by events become stubs (recommended, not listed as catalog) instead of hidden
items (never recommended): a store that sends events before, or without, its catalog gets
lists at once.

Existing stubs are recognised by what only an event-created row has: no title, description,
categories, price or attributes, hidden, and never updated since it was created (deleting an
item through the API updates it, so deleted items stay hidden). A constant default: no table
rewrite, and the previous release's inserts keep working (deploy/MIGRATIONS.md)."""

from django.db import migrations, models

STUBS_FROM_HIDDEN = """
UPDATE catalog_item SET is_stub = true, is_hidden = false
WHERE is_hidden AND title = '' AND description = '' AND categories = '{}' AND price IS NULL
      AND attributes = '{}'::jsonb AND created_at = updated_at
"""
HIDDEN_FROM_STUBS = "UPDATE catalog_item SET is_hidden = true, is_stub = false WHERE is_stub"


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0008_dashboard_list_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="item",
            name="is_stub",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.RunSQL(STUBS_FROM_HIDDEN, HIDDEN_FROM_STUBS),
    ]
