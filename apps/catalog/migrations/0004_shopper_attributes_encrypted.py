"""Shopper attributes encrypted at rest (apps/core/pii.py): the jsonb column becomes text and
every existing value is encrypted under the first PII_ENCRYPTION_KEYS key."""

from django.db import migrations

import apps.core.pii


def encrypt_existing(apps, schema_editor):
    from apps.core.pii import TOKEN_PREFIX, encrypt

    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, attributes FROM catalog_shopper WHERE attributes NOT LIKE %s",
            [TOKEN_PREFIX + "%"],
        )
        rows = cursor.fetchall()
        for pk, plain in rows:
            cursor.execute(
                "UPDATE catalog_shopper SET attributes = %s WHERE id = %s",
                [encrypt(plain.encode()), pk],
            )


def decrypt_existing(apps, schema_editor):
    from apps.core.pii import TOKEN_PREFIX, decrypt

    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, attributes FROM catalog_shopper WHERE attributes LIKE %s",
            [TOKEN_PREFIX + "%"],
        )
        for pk, token in cursor.fetchall():
            cursor.execute(
                "UPDATE catalog_shopper SET attributes = %s WHERE id = %s",
                [decrypt(token).decode(), pk],
            )


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0003_event_item_price"),
    ]

    operations = [
        migrations.AlterField(
            model_name="shopper",
            name="attributes",
            field=apps.core.pii.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.RunPython(encrypt_existing, decrypt_existing),
    ]
