from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0004_shopper_attributes_encrypted"),
    ]

    operations = [
        migrations.AlterField(
            model_name="event",
            name="type",
            field=models.CharField(
                choices=[
                    ("view", "View"),
                    ("add_to_cart", "Add to cart"),
                    ("purchase", "Purchase"),
                    ("rating", "Rating"),
                    ("click", "Click"),
                    ("dismiss", "Not interested"),
                ],
                max_length=16,
            ),
        ),
    ]
