"""Background cost of a platform with many stores: CPU of beat + one worker, idle and with some
stores active.

Target (issue 18): with 1,000 stores and no traffic, beat + worker spend < 2 % of one core,
measured over 10 minutes with no training due; the cost grows with the active stores only.

    DATABASE_URL=postgres://…/ss_bench REDIS_URL=redis://…/8 \\
        .venv/bin/python bench/idle.py [--stores 1000] [--minutes 10] [--active 20]

Stores `scale-<n>` are provisioned as sign-up does (recorded SQL replayed, bench/_stores.py)
and kept for the next run (`--drop` removes them). Beat and a worker (as deploy/local/Procfile
starts them) run as subprocesses; after a warm-up, their CPU seconds (every process of each
tree, from psutil) are read over the window. With `--active N`, this process plays the web
tier of N stores: every second each logs a served list and an API request, through the same
buffers and flush threads as the web processes, so beat's dispatchers send those stores'
impression copies and anomaly scans. The worker's log counts the tasks that ran.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("DEBUG", "0")

import django  # noqa: E402

django.setup()

import psutil  # noqa: E402
from _stores import stores_drop, stores_ensure  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.core.activity import Activity, activity_key  # noqa: E402
from apps.core.cache import redis_client  # noqa: E402
from apps.notifications.anomaly import api_request_count  # noqa: E402
from apps.recommendations.impressions import impression_log  # noqa: E402
from apps.tenants.models import Tenant  # noqa: E402
from config.celery import app  # noqa: E402

CELERY = str(ROOT / ".venv" / "bin" / "celery")
# Startup (imports, beat reading every schema once: ~3 s of CPU at 1,000 stores) is not
# measured: the window starts after it.
WARMUP_SECONDS = 90
SUCCEEDED = re.compile(r"Task (\S+)\[[^\]]+\] succeeded")


def _tree_cpu(process: psutil.Process) -> float:
    """User + system CPU seconds of a process and its children (alive ones)."""
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _traffic(schemas: list[str], stop: threading.Event) -> None:
    """Each active store: one served list and one API request a second."""
    n = 0
    while not stop.wait(1.0):
        n += 1
        for schema in schemas:
            impression_log(
                schema_name=schema,
                recommendation_id=f"bench-{schema}-{n}",
                surface="api",
                user_id=f"shopper-{n % 50}",
                model_version_number=None,
                strategy="popular",
                item_ids=[f"item-{n % 200}", f"item-{(n + 7) % 200}"],
            )
            api_request_count(200, schema_name=schema)


def _training_due_within(minutes: float) -> bool:
    """True if the window meets the nightly trainings' hours (01:00-04:59 UTC)."""
    now = timezone.now()
    steps = int(minutes) + 1
    return any(1 <= (now + timezone.timedelta(minutes=m)).hour <= 4 for m in range(steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--active", type=int, default=0, help="stores sending traffic")
    parser.add_argument("--drop", action="store_true", help="drop the stores afterwards")
    args = parser.parse_args()

    call_command("setup_platform", verbosity=0)
    stores_ensure(count=args.stores)
    schemas = list(
        Tenant.objects.filter(slug__startswith="scale-")
        .order_by("slug")
        .values_list("schema_name", flat=True)[: args.stores]
    )
    if _training_due_within(args.minutes + 1):
        print("warning: nightly trainings (01:00-04:59 UTC) fall in this window", flush=True)
    app.control.purge()
    # Marks left by an earlier run (its active stores stay watched for an hour) are cleared:
    # the window measures this run's activity only.
    redis_client().delete(activity_key(Activity.IMPRESSIONS), activity_key(Activity.API_TRAFFIC))

    logs = Path(tempfile.mkdtemp(prefix="idle-bench-"))
    env = {**os.environ, "DEBUG": "0"}
    beat = subprocess.Popen(
        [CELERY, "-A", "config", "beat", "-l", "INFO", "-s", str(logs / "beat-schedule")],
        cwd=ROOT,
        env=env,
        stdout=open(logs / "beat.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    worker_command = ["worker", "-Q", "default,training", "--concurrency", "2", "-l", "INFO"]
    worker = subprocess.Popen(
        [CELERY, "-A", "config", *worker_command],
        cwd=ROOT,
        env=env,
        stdout=open(logs / "worker.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    stop = threading.Event()
    traffic = threading.Thread(target=_traffic, args=(schemas[: args.active], stop), daemon=True)
    try:
        traffic.start()
        time.sleep(WARMUP_SECONDS)  # imports, first schedule read, first dispatches
        beat_ps, worker_ps = psutil.Process(beat.pid), psutil.Process(worker.pid)
        tasks_before = _tasks_run(logs / "worker.log")
        beat_0, worker_0, started = _tree_cpu(beat_ps), _tree_cpu(worker_ps), time.monotonic()
        time.sleep(args.minutes * 60)
        beat_1, worker_1, elapsed = (
            _tree_cpu(beat_ps),
            _tree_cpu(worker_ps),
            time.monotonic() - started,
        )
        tasks_after = _tasks_run(logs / "worker.log")
    finally:
        stop.set()
        for proc in (beat, worker):
            proc.terminate()
        for proc in (beat, worker):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if args.drop:
            print(f"dropped {stores_drop()} stores")

    beat_cpu, worker_cpu = beat_1 - beat_0, worker_1 - worker_0
    share = 100 * (beat_cpu + worker_cpu) / elapsed
    ran = {name: tasks_after.get(name, 0) - tasks_before.get(name, 0) for name in tasks_after}
    print(
        f"stores {len(schemas)}, active {args.active}, window {elapsed / 60:.1f} min, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        f"CPU: beat {beat_cpu:.1f}s + worker {worker_cpu:.1f}s = "
        f"{share:.2f}% of one core (target < 2% idle)"
    )
    print("tasks run: " + (", ".join(f"{k} {v}" for k, v in sorted(ran.items()) if v) or "none"))
    print(f"logs: {logs}")


def _tasks_run(log: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for match in SUCCEEDED.finditer(log.read_text(errors="replace")):
        counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    return counts


if __name__ == "__main__":
    main()
