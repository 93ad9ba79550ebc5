"""Shared edge of the import commands: store lookup, the import in its schema, the summary."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from apps.catalog import live
from apps.catalog.importing import ImportFileError
from apps.tenants.commands import store_for_slug

ERRORS_SHOWN = 20


class ImportCommand(BaseCommand):
    kind = ""

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", required=True, help="store slug")
        parser.add_argument("file", help="CSV (header row) or JSON Lines (.jsonl/.ndjson/.json)")

    def run_import(self, path: Path):
        raise NotImplementedError

    def handle(self, *args, tenant: str, file: str, **options) -> None:
        store = store_for_slug(tenant)
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        with tenant_context(store):
            try:
                report = self.run_import(path)
            except ImportFileError as exc:
                raise CommandError(f"{file}: {exc}. Nothing was imported.") from None
        live.event_counters_flush()
        rate = f"{report.rows_per_second:,.0f} rows/s"
        summary = f"{report.rows:,} rows in {report.seconds:.1f}s ({rate}): "
        if self.kind == "events":
            summary += f"{report.stored:,} stored, {report.duplicates:,} duplicates, "
        else:
            summary += f"{report.created:,} created, {report.updated:,} updated, "
        summary += f"{len(report.errors):,} errors"
        self.stdout.write(summary)
        for line, field, message in report.errors[:ERRORS_SHOWN]:
            self.stdout.write(f"  line {line}: {field or 'row'}: {message}")
        if len(report.errors) > ERRORS_SHOWN:
            self.stdout.write(f"  ... and {len(report.errors) - ERRORS_SHOWN:,} more")
