from django.core.management.base import BaseCommand

from apps.billing.services import plans_seed


class Command(BaseCommand):
    help = "Create the default plans (Free, Starter, Growth, Enterprise) that do not exist yet."

    def handle(self, *args, **options) -> None:
        created = plans_seed()
        self.stdout.write(f"Created {created} plan(s); existing plans left as they are.")
