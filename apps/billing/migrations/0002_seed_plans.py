"""Free, Starter, Growth and Enterprise exist after migrate (operators edit them in admin).
Runs only in the public schema, where billing's tables live."""

from django.db import migrations


def seed_plans(apps, schema_editor):
    from apps.billing.plans import DEFAULT_PLANS

    if schema_editor.connection.schema_name != "public":
        return
    Plan = apps.get_model("billing", "Plan")
    for data in DEFAULT_PLANS:
        fields = {key: value for key, value in data.items() if key != "code"}
        Plan.objects.get_or_create(code=data["code"], defaults=fields)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(seed_plans, migrations.RunPython.noop)]
