"""The newcomer's path, as the README tells it (issue 12): clone the repository, `make run`,
open the platform, sign in with the demo owner login that `make run` printed and land on the
demo store's dashboard, run a staff command exactly as the README writes it, stop everything.

The clone is of this repository's committed HEAD, in a temporary folder, on free ports, with
DATABASE_URL / REDIS_URL unset: `make run` installs the venv (pip's own caches and wheel
sources serve it, as they would a newcomer) and starts the embedded PostgreSQL and Redis under
the clone's `.data/`. Nothing of this checkout's venv, data or environment is shared.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.processes import ROOT, free_port, http_status, local_services, wait_until
from tests.system.client import Browser

pytestmark = [pytest.mark.newcomer, pytest.mark.slow]

START_TIMEOUT = 240.0  # venv install (~45 s from cached wheels), migrations, demo data, training
LOGINS = re.compile(
    r"Demo store\s+(?P<store>http://\S+)\s+login\s+(?P<email>\S+) / (?P<password>\S+)"
)
# What this run's own settings put in the environment, which a newcomer's shell has not.
NOT_A_NEWCOMERS = (
    "DATABASE_URL",
    "REDIS_URL",
    "DJANGO_SETTINGS_MODULE",
    "CACHE_KEY_PREFIX",
    "CELERY_TEST_QUEUE_PREFIX",
    "CELERY_BROKER_URL",
    "CHANNELS_REDIS_URL",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "LOCAL_PG_PORT",
    "LOCAL_REDIS_PORT",
    "WEB_PORT",
    "PUBLIC_PORT",
)


def newcomer_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_A_NEWCOMERS}
    env = {k: v for k, v in env.items() if not k.startswith(("PYTEST", "PG"))}
    # Not this checkout's venv: the clone's make creates its own.
    env["PATH"] = os.pathsep.join(
        part for part in env.get("PATH", "/usr/bin:/bin").split(os.pathsep) if str(ROOT) not in part
    )
    return {**env, **extra}


def test_a_newcomer_clones_and_runs_the_platform():
    if not (ROOT / ".git").exists():
        pytest.fail(f"{ROOT} is not a git checkout: the newcomer test clones it")
    folder = Path(tempfile.mkdtemp(prefix="ss-newcomer-"))
    clone = folder / "shelfsense"
    ports = {
        "WEB_PORT": str(free_port()),
        "LOCAL_PG_PORT": str(free_port()),
        "LOCAL_REDIS_PORT": str(free_port()),
    }
    env = newcomer_env(**ports)
    log_path = folder / "make-run.log"
    run = None
    try:
        subprocess.run(  # noqa: S603 (a command the test builds)
            ["git", "clone", "--quiet", str(ROOT), str(clone)],  # noqa: S607 (git from PATH)
            check=True,
            capture_output=True,
            timeout=120,
        )
        with open(log_path, "wb") as log:
            run = subprocess.Popen(
                ["make", "run"],  # noqa: S607 (make from PATH, as a newcomer runs it)
                cwd=clone,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        port = int(ports["WEB_PORT"])

        def ready() -> bool:
            if run.poll() is not None:
                raise AssertionError(f"make run exited with {run.returncode}")
            return http_status(port, "/readyz") == 200

        started = time.monotonic()
        try:
            wait_until(ready, timeout=START_TIMEOUT, message="/readyz of `make run`", interval=1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_tail(log_path)}") from None
        print(f"make run ready in {time.monotonic() - started:.0f}s")

        # The demo owner login it printed, used as printed.
        printed = LOGINS.search(log_path.read_text(errors="replace"))
        assert printed, _tail(log_path)
        store = printed["store"].rstrip("/")
        assert store == f"http://demo.localhost:{port}", printed.group(0)
        browser = Browser()
        landing = browser.sign_in(f"http://localhost:{port}", printed["email"], printed["password"])
        assert (landing.status, landing.url) == (200, store + "/"), (
            f"signed in, landed on {landing.url} ({landing.status}):\n"
            + re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", landing.text))[:600]
        )
        assert re.search(r"<h1[^>]*>\s*Overview", landing.text), landing.text[:600]

        # A staff command, exactly as the README writes it, from the clone, with no variables.
        readme = (clone / "README.md").read_text()
        assert "manage.py list_tenants" in readme
        listed = subprocess.run(
            [".venv/bin/python", "manage.py", "list_tenants"],
            cwd=clone,
            env={"PATH": env["PATH"], "HOME": env.get("HOME", "/root")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert re.search(r"^.*\bdemo\b", listed.stdout, re.M), listed.stdout
        assert "Traceback" not in listed.stderr, listed.stderr
    finally:
        _stop(run, clone, env, ports)
        shutil.rmtree(folder, ignore_errors=True)


def _tail(path: Path, lines: int = 60) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no output)"
    kept = [line for line in text.splitlines() if "is ignored: it is neither" not in line]
    return "--- make run ---\n" + "\n".join(kept[-lines:])


def _stop(run: subprocess.Popen | None, clone: Path, env: dict, ports: dict) -> None:
    """Ctrl-C's equivalent for everything `make run` started (its process group: make,
    honcho, web, worker, beat), then `make services-down`; fails if a port still answers."""
    if run is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=10)
    if (clone / ".venv" / "bin" / "python").exists():
        subprocess.run(
            ["make", "services-down"],  # noqa: S607
            cwd=clone,
            env=env,
            capture_output=True,
            timeout=120,
        )
    services = local_services()
    for name in ("WEB_PORT", "LOCAL_PG_PORT", "LOCAL_REDIS_PORT"):
        wait_until(
            lambda name=name: not services.port_answers(int(ports[name])),
            timeout=20,
            message=f"{name} {ports[name]} to be closed after stopping",
        )
