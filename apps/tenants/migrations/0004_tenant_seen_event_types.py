import django.contrib.postgres.fields
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0003_tenant_currency"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="seen_event_types",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.CharField(max_length=16), blank=True, null=True, size=None
            ),
        ),
    ]
