from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from apps.recommendations.training import training_data_export
from apps.tenants.commands import store_for_slug


class Command(BaseCommand):
    help = (
        "Write a store's training events (the training window, coded: int arrays + id "
        "vocabularies as .npy files, manifest.json last) into a folder: the input of a GPU or "
        "Spark training job (deploy/SCALING.md)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", required=True, help="store slug")
        parser.add_argument("--out", required=True, type=Path, help="folder to write")

    def handle(self, *args, tenant: str, out: Path, **options) -> None:
        store = store_for_slug(tenant)
        with tenant_context(store):
            try:
                manifest = training_data_export(out=out)
            except OSError as exc:
                raise CommandError(f"Cannot write into {out}: {exc.strerror}.") from exc
        self.stdout.write(
            f"{store.slug}: {manifest['events']} events, {manifest['shoppers']} shoppers, "
            f"{manifest['items']} items written to {out}"
        )
