"""Print the Subresource Integrity hash of the served browser SDK (for README's snippet)."""

from django.core.management.base import BaseCommand

from apps.apikeys.sdk import sdk_integrity


class Command(BaseCommand):
    help = "Print the integrity (sha384) of /sdk/v1/shelfsense.js."

    def handle(self, *args, **options):
        self.stdout.write(sdk_integrity())
