"""Batch recommendation jobs, end to end into the result file: shoppers per second.

Usage: ``DATABASE_URL=... REDIS_URL=... python bench/batch_jobs.py [--shoppers 50000]
[--items 10000] [--events 1000000] [--k 20] [--chunk 2000] [--celery]``.

A throw-away store `bench-batch-<random>` gets a model trained in-process on the synthetic
e-commerce generator (ml.datasets.synthetic: heavy-tailed shopper activity, long-tail item
popularity, sessions within categories), saved as its active version the way training saves
one; its catalog (every item, 3% hidden or out of stock) and one Shopper row per shopper go to
PostgreSQL. Then one job lists every shopper with k = 20, no explanations: the timer covers
start (the shopper list written to storage), every chunk (lists, part files, failures,
progress rows and pushes) and the commit of the JSON Lines file. By default the steps run in
this process (`batch_job_run_inline`, the export command's path); `--celery` runs them in a
real Celery worker (prefork, concurrency 1) on the `batch` queue, timed from the request's
commit to the job's `succeeded`. Target: >= 5,000 shoppers/s on 2 cores. Everything is
dropped afterwards (schema, files, Redis keys).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

for required in ("DATABASE_URL", "REDIS_URL"):
    if not os.environ.get(required):
        sys.exit(f"{required} must be set.")
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="bench-batch-"))
os.environ.setdefault("LOG_LEVEL", "WARNING")
if "--celery" in sys.argv:
    # The test settings' prefixed queues: a developer's worker on the same broker never takes
    # this run's tasks, and the run's worker takes nobody else's.
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["CELERY_TEST_QUEUE_PREFIX"] = f"bench-{secrets.token_hex(3)}"
else:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.files.storage import default_storage  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from apps.batchjobs import services  # noqa: E402
from apps.batchjobs.models import BatchJob  # noqa: E402
from apps.catalog.models import Item, Shopper  # noqa: E402
from apps.core.cache import redis_client  # noqa: E402
from apps.recommendations.model_store import artifact_save  # noqa: E402
from apps.recommendations.models import ModelVersion  # noqa: E402
from apps.tenants.models import Tenant  # noqa: E402
from apps.tenants.services import tenant_create  # noqa: E402
from ml.datasets.synthetic import synthetic_store  # noqa: E402
from ml.model import RecommenderModel  # noqa: E402
from ml.pipeline import TrainingConfig, train  # noqa: E402


def seed(store: Tenant, args) -> list[str]:
    """The trained model as the store's active version, its catalog and its shoppers."""
    t0 = time.perf_counter()
    if args.model and Path(args.model).exists():
        model = RecommenderModel.load(Path(args.model))
    else:
        interactions, catalog = synthetic_store(
            n_users=args.shoppers, n_items=args.items, n_interactions=args.events, seed=1
        )
        model = train(interactions, catalog, TrainingConfig(search=False)).model
        seconds = time.perf_counter() - t0
        print(f"trained {model.strategy} on {args.events:,} events in {seconds:.0f} s")
        if args.model:
            model.save(Path(args.model))
    item_ids = model.item_index.ids.tolist()
    user_ids = model.user_index.ids.tolist()
    now = timezone.now()
    with tenant_context(store):
        name = artifact_save(model, schema_name=store.schema_name, number=1)
        ModelVersion.objects.create(
            number=1,
            status=ModelVersion.Status.ACTIVE,
            artifact_path=name,
            strategy=model.strategy,
            window_end=now,
            activated_at=now,
        )
        Item.objects.bulk_create(
            (
                Item(
                    item_id=item, title=f"Item {item}", is_hidden=n % 67 == 0, in_stock=n % 53 != 0
                )
                for n, item in enumerate(item_ids)
            ),
            batch_size=5000,
        )
        Shopper.objects.bulk_create(
            (Shopper(user_id=user, last_seen_at=now) for user in user_ids), batch_size=5000
        )
    return user_ids


def run_inline(user_ids: list[str], k: int) -> BatchJob:
    job = services.batch_job_create(user_ids=user_ids, k=k, actor_label="bench", dispatch=False)
    return services.batch_job_run_inline(job_id=job.pk)


def run_celery(user_ids: list[str], k: int) -> tuple[BatchJob, float]:
    env = {**os.environ, "BATCH_CHUNK_SIZE": str(settings.BATCH_CHUNK_SIZE)}
    queue = settings.CELERY_TASK_ROUTES["apps.batchjobs.tasks.batch_job_chunk"]["queue"]
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            queue,
            "-c",
            "1",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(8)  # the worker connects and its pool starts
        job = services.batch_job_create(user_ids=user_ids, k=k, actor_label="bench")
        started = time.perf_counter()  # on commit (autocommit): the start task is sent
        while True:
            job.refresh_from_db()
            if job.finished:
                return job, time.perf_counter() - started
            time.sleep(0.05)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shoppers", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=2_000)
    parser.add_argument("--celery", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process run")
    parser.add_argument(
        "--model", default="", help="folder of a trained model: loaded if present, else saved"
    )
    args = parser.parse_args()
    settings.BATCH_CHUNK_SIZE = args.chunk
    settings.BATCH_MAX_USER_IDS = max(settings.BATCH_MAX_USER_IDS, args.shoppers)

    slug = f"bench-batch-{secrets.token_hex(3)}"
    store = tenant_create(slug=slug, name="Bench batch")
    try:
        user_ids = seed(store, args)
        print(f"load: {os.getloadavg()[0]:.1f} (1-minute average, {os.cpu_count()} cores)")
        with tenant_context(store):
            t0 = time.perf_counter()
            if args.celery:
                job, seconds = run_celery(user_ids, args.k)
            elif args.profile:
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                job = profiler.runcall(run_inline, user_ids, args.k)
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
                seconds = time.perf_counter() - t0
            else:
                job = run_inline(user_ids, args.k)
                seconds = time.perf_counter() - t0
            lines = 0
            if job.result_name:
                with default_storage.open(job.result_name, "rb") as handle:
                    lines = sum(1 for _ in handle)
            # The ceiling on this machine now: the model's batch scoring alone (the top-100
            # the API's cached lists hold), over the same shoppers and chunks.
            from apps.batchjobs.selection import active_model

            model = active_model().model
            t1 = time.perf_counter()
            for start in range(0, len(user_ids), args.chunk):
                rows = model.user_index.lookup(user_ids[start : start + args.chunk])
                model.recommend_indices(rows, 100, exclude_seen=True)
            scoring = time.perf_counter() - t1
        print(
            f"model scoring alone (top-100, same chunks): {len(user_ids) / scoring:,.0f} "
            f"shoppers/s; load now {os.getloadavg()[0]:.1f}"
        )
        print(
            f"{'celery worker' if args.celery else 'in process'}: job {job.status}, "
            f"{lines:,} lines ({job.result_bytes / 1e6:.1f} MB), {job.failures_count} failures, "
            f"{len(user_ids):,} shoppers in {seconds:.2f} s -> {len(user_ids) / seconds:,.0f} "
            f"shoppers/s (k={args.k}, chunks of {args.chunk}; target >= 5,000)"
        )
    finally:
        connection.set_schema_to_public()
        client = redis_client()
        for key in client.scan_iter(match=f"{store.schema_name}:*", count=1000):
            client.delete(key)
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{store.schema_name}" CASCADE')
        Tenant.objects.filter(pk=store.pk).delete()
        shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)


if __name__ == "__main__":
    main()
