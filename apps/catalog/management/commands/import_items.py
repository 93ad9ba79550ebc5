from apps.catalog.importing import items_import
from apps.catalog.management.commands._importing import ImportCommand


class Command(ImportCommand):
    help = (
        "Import (upsert) items into a store from CSV or JSON Lines (same validation as the "
        "API). The whole file is read first: one that is not UTF-8 or has a CSV field over "
        "131,072 characters stops with the line and stores nothing; invalid rows are listed "
        "(line, field, message) and the valid ones stored."
    )
    kind = "items"

    def run_import(self, path):
        return items_import(path=path, progress_stream=self.stderr)
