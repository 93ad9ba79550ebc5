from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0002_event_time_brin"),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="item_price",
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=12, null=True),
        ),
    ]
