"""Load MovieLens-100K into the demo store through the catalog ingestion services
(apps.recommendations.movielens), then train."""

import json
import time

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from apps.catalog.models import Event
from apps.core.errors import ApplicationError
from apps.recommendations import selectors, services
from apps.recommendations.management.commands._common import format_table
from apps.recommendations.movielens import movielens_ingest, movielens_read
from apps.tenants.commands import store_for_slug


class Command(BaseCommand):
    help = "Load MovieLens-100K into a store (default: demo) and train its recommender."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", default="demo", help="store slug (default: demo)")
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when the store has events"
        )
        parser.add_argument("--no-train", action="store_true", help="load the data only")
        parser.add_argument(
            "--config", default=None, help="JSON overrides of ml.pipeline.TrainingConfig"
        )

    def handle(self, *args, tenant: str, if_empty: bool, no_train: bool, **options) -> None:
        store = store_for_slug(tenant)
        with tenant_context(store):
            if if_empty and Event.objects.exists():
                self.stdout.write(f"{store.slug}: has events already, demo data not loaded.")
                if no_train or selectors.model_version_active_readable():
                    return
                # A returning `make run` whose model an older engine wrote (a new artifact
                # format or feature set): train again so the demo serves a model at once.
                self.stdout.write(f"{store.slug}: the active model is unreadable by this engine.")
                self._train(store, options["config"])
                return
            try:
                data = movielens_read()
            except (RuntimeError, ValueError) as exc:
                raise CommandError(f"MovieLens-100K unavailable: {exc}") from exc
            started = time.perf_counter()
            try:
                accepted = movielens_ingest(data)
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(
                f"{store.slug}: {len(data.items)} items and {accepted} rating events loaded in "
                f"{time.perf_counter() - started:.1f}s."
            )
            if not no_train:
                self._train(store, options["config"])

    def _train(self, store, config: str | None) -> None:
        overrides = json.loads(config) if config else None
        services.training_schedule_ensure()
        version = services.model_version_start(
            actor_label="command:seed_demo",
            config=overrides,
            dispatch=False,
            plan_limited=False,
        )
        self.stdout.write(f"{store.slug}: training {version.label}...")
        version = services.model_version_train(version_id=version.pk, precompute="sync")
        note = version.activation_note or version.error
        self.stdout.write(f"{store.slug}: {version.label} {version.status}. {note}")
        self.stdout.write(format_table(selectors.metrics_table([version])))
