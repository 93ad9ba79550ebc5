from apps.catalog.importing import events_import
from apps.catalog.management.commands._importing import ImportCommand


class Command(ImportCommand):
    help = "Import events into a store from CSV or JSON Lines (same validation as the API)."
    kind = "events"

    def run_import(self, path):
        return events_import(path=path, progress_stream=self.stderr)
