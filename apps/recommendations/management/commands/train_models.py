import json
import time

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from apps.core.errors import ApplicationError
from apps.recommendations import selectors, services
from apps.recommendations.management.commands._common import format_table
from apps.tenants.commands import store_for_slug
from apps.tenants.selectors import store_list


class Command(BaseCommand):
    help = (
        "Train a store's recommender. Queues the training task on the `training` queue and "
        "follows it to the end (trains in this process if no worker takes it within "
        "--pickup-timeout seconds); --no-wait only queues; --sync trains in this process. "
        "Prints the metrics table and the model now serving."
    )

    def add_arguments(self, parser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant", help="store slug")
        target.add_argument("--all", action="store_true", help="every store")
        parser.add_argument("--sync", action="store_true", help="train in this process")
        parser.add_argument("--no-wait", action="store_true", help="queue the training and return")
        parser.add_argument(
            "--pickup-timeout",
            type=float,
            default=30.0,
            help="seconds to wait for a worker before training in this process (default 30)",
        )
        parser.add_argument(
            "--config", default=None, help="JSON overrides of ml.pipeline.TrainingConfig"
        )

    def handle(self, *args, tenant=None, sync=False, config=None, **options) -> None:
        self.wait = not options["no_wait"]
        self.pickup_timeout = options["pickup_timeout"]
        try:
            overrides = json.loads(config) if config else None
        except json.JSONDecodeError as exc:
            raise CommandError(f"--config is not valid JSON: {exc}") from exc
        stores = list(store_list()) if options["all"] else [store_for_slug(tenant)]
        for store in stores:
            with tenant_context(store):
                self._train(store, sync=sync, overrides=overrides)

    def _train(self, store, *, sync: bool, overrides) -> None:
        services.training_schedule_ensure()
        try:
            version = services.model_version_start(
                actor_label="command:train_models",
                config=overrides,
                dispatch=not sync,
                plan_limited=False,
            )
        except ApplicationError as exc:
            raise CommandError(f"{store.slug}: {exc.message} {exc.fields or ''}".strip()) from exc
        if not sync:
            self.stdout.write(f"{store.slug}: training of {version.label} queued.")
            if not self.wait:
                return
            version = self._follow(store, version)
        else:
            self.stdout.write(f"{store.slug}: training {version.label}...")
            version = services.model_version_train(version_id=version.pk, precompute="sync")
        self.stdout.write(
            f"{store.slug}: {version.label} {version.status} "
            f"({version.counts.get('events', 0)} events, {version.counts.get('shoppers', 0)} "
            f"shoppers, {version.counts.get('items', 0)} items, strategy {version.strategy or '-'})"
        )
        if version.error:
            self.stdout.write(self.style.ERROR(f"  error: {version.error}"))
        if version.activation_note:
            self.stdout.write(f"  {version.activation_note}")
        self.stdout.write(format_table(selectors.metrics_table([version])))
        active = selectors.model_version_active()
        self.stdout.write(
            f"{store.slug}: serving {active.label if active else 'fallback (no model)'}"
        )

    def _follow(self, store, version):
        """Wait for the queued training to end. A store's platform may run no worker (a
        staff machine, a stopped queue): then train here; the training lock and the status
        check make sure only one of us trains if a worker turns up late."""
        queued_at = time.monotonic()
        while True:
            version.refresh_from_db()
            if version.status != version.Status.TRAINING:
                return version
            if not services.training_running() and (
                time.monotonic() - queued_at > self.pickup_timeout
            ):
                self.stdout.write(
                    f"{store.slug}: no worker took {version.label} within "
                    f"{self.pickup_timeout:g}s; training in this process."
                )
                return services.model_version_train(version_id=version.pk, precompute="sync")
            time.sleep(1.0)
