from apps.catalog.importing import events_import
from apps.catalog.management.commands._importing import ImportCommand


class Command(ImportCommand):
    help = (
        "Import events into a store from CSV or JSON Lines (same validation as the API). The "
        "whole file is read first: one that is not UTF-8 or has a CSV field over 131,072 "
        "characters stops with the line and stores nothing; invalid rows are listed (line, "
        "field, message) and the valid ones stored."
    )
    kind = "events"

    def run_import(self, path):
        return events_import(path=path, progress_stream=self.stderr)
