"""Load MovieLens-100K into the demo store through the catalog ingestion services, then train.

The data is read offline out of the recbole wheel (ml.datasets.movielens), cached under
<repo>/.data/datasets. Ratings keep their order and gaps; all timestamps move by one constant so
the newest lands at load time (the ingestion validation refuses events older than 3 years).
"""

import time
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog.models import Event
from apps.catalog.services import events_ingest, items_upsert
from apps.recommendations import selectors, services
from apps.recommendations.management.commands._common import format_table, store_for_slug
from ml.datasets.movielens import iter_ml100k_items, iter_ml100k_ratings

BATCH = 10_000


def dataset_dir() -> Path:
    return Path(settings.BASE_DIR) / ".data" / "datasets"


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
                return
            try:
                items = list(iter_ml100k_items(dataset_dir()))
                ratings = list(iter_ml100k_ratings(dataset_dir()))
            except (RuntimeError, ValueError) as exc:
                raise CommandError(f"MovieLens-100K unavailable: {exc}") from exc
            started = time.perf_counter()
            self._load_items(items)
            accepted = self._load_ratings(ratings)
            self.stdout.write(
                f"{store.slug}: {len(items)} items and {accepted} rating events loaded in "
                f"{time.perf_counter() - started:.1f}s."
            )
            if no_train:
                return
            import json

            overrides = json.loads(options["config"]) if options["config"] else None
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

    def _load_items(self, items) -> None:
        rows = [
            {
                "item_id": item_id,
                "title": title,
                "categories": genres,
                "attributes": (
                    {"release_year": datetime.fromtimestamp(release, UTC).year} if release else {}
                ),
            }
            for item_id, title, genres, release in items
        ]
        for start in range(0, len(rows), BATCH):
            result = items_upsert(rows=rows[start : start + BATCH])
            if result.errors:
                raise CommandError(f"item rows rejected: {result.errors[:3]}")

    def _load_ratings(self, ratings) -> int:
        shift = int(timezone.now().timestamp()) - max(ts for _, _, _, ts in ratings)
        accepted = 0
        for start in range(0, len(ratings), BATCH):
            rows = [
                {
                    "event_id": f"ml100k-{user_id}-{item_id}",
                    "user_id": user_id,
                    "item_id": item_id,
                    "type": "rating",
                    "value": rating,
                    "timestamp": datetime.fromtimestamp(ts + shift, UTC),
                }
                for user_id, item_id, rating, ts in ratings[start : start + BATCH]
            ]
            result = events_ingest(rows=rows, source="seed")
            if result.errors:
                raise CommandError(
                    f"rating rows rejected: {[e.as_dict() for e in result.errors[:3]]}"
                )
            accepted += result.accepted
        return accepted
