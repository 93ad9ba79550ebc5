from apps.catalog.importing import items_import
from apps.catalog.management.commands._importing import ImportCommand


class Command(ImportCommand):
    help = "Import (upsert) items into a store from CSV or JSON Lines (same validation as the API)."
    kind = "items"

    def run_import(self, path):
        return items_import(path=path, progress_stream=self.stderr)
