"""deploy/local/services.py run as the Makefile runs it: `up` starts a private PostgreSQL and
Redis (here: on free ports, data in a temporary folder), prints the two URLs and records them in
LOCAL_SERVICES_FILE; `status` and `down` report and stop them; a taken port stops `up` before
anything starts. Never touches the repository's own .data/ servers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from tests.processes import ROOT, PrivateRedis, ProcessSet, free_port, local_services

SCRIPT = ROOT / "deploy" / "local" / "services.py"

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Under the system temp folder, not pytest's 0700 tmp_path: as root, the servers run as an
    # unprivileged account that must reach their data folders.
    path = Path(tempfile.mkdtemp(prefix="ss-local-services-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def env(data_dir: Path) -> Iterator[dict[str, str]]:
    values = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PG", "LOCAL_")) and key not in ("DATABASE_URL", "REDIS_URL")
    }
    values.update(
        LOCAL_DATA_DIR=str(data_dir),
        LOCAL_PG_PORT=str(free_port()),
        LOCAL_REDIS_PORT=str(free_port()),
        LOCAL_SERVICES_FILE=str(data_dir / "recorded" / "services.env"),
    )
    yield values
    _services(values, "down")  # whatever a failed test left running


def _services(env: dict[str, str], command: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 (our interpreter and script)
        [sys.executable, str(SCRIPT), command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _port_open(port: int) -> bool:
    return local_services().port_answers(port)


def test_up_status_down(env, data_dir):
    pg_port, redis_port = int(env["LOCAL_PG_PORT"]), int(env["LOCAL_REDIS_PORT"])
    database_url = f"postgres://postgres@127.0.0.1:{pg_port}/shelfsense"
    redis_url = f"redis://127.0.0.1:{redis_port}/0"

    # when: up on a fresh data folder
    started = _services(env, "up")

    # then: exactly the two URLs on stdout, also recorded in LOCAL_SERVICES_FILE
    assert (started.returncode, started.stdout) == (
        0,
        f"DATABASE_URL={database_url}\nREDIS_URL={redis_url}\n",
    ), started.stderr
    recorded = Path(env["LOCAL_SERVICES_FILE"])
    assert recorded.read_text() == started.stdout
    assert (data_dir / "postgres" / "PG_VERSION").read_text().strip() == "16"
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("shelfsense",)
    client = redis.Redis.from_url(redis_url)
    client.set("ss-local-services", "kept")

    # status: one line per server, exit 0
    running = _services(env, "status")
    assert running.returncode == 0, running.stderr
    lines = running.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("postgres: running pid ")
    assert lines[0].endswith(
        f", PostgreSQL 16, 127.0.0.1:{pg_port}, status ready, data {data_dir / 'postgres'}"
    )
    redis_pid = (data_dir / "redis" / "redis.pid").read_text().strip()
    assert lines[1] == (
        f"redis: running pid {redis_pid}, 127.0.0.1:{redis_port}, data {data_dir / 'redis'}"
    )

    # up again reuses both servers and prints the same URLs
    again = _services(env, "up")
    assert (again.returncode, again.stdout) == (0, started.stdout)
    assert "postgres: reusing pid" in again.stderr
    assert f"redis: reusing the server on 127.0.0.1:{redis_port}" in again.stderr

    # down stops both; the recorded URLs stay
    stopped = _services(env, "down")
    assert stopped.returncode == 0, stopped.stderr
    assert (_port_open(pg_port), _port_open(redis_port)) == (False, False)
    assert recorded.read_text() == started.stdout
    after = _services(env, "status")
    assert (after.returncode, after.stdout) == (
        3,
        f"postgres: stopped (data {data_dir / 'postgres'})\n"
        f"redis: stopped (data {data_dir / 'redis'})\n",
    )
    assert _services(env, "down").returncode == 0  # not running is not an error

    # data survives down/up (Redis: SHUTDOWN SAVE, then its append-only file)
    assert _services(env, "up").returncode == 0
    assert redis.Redis.from_url(redis_url).get("ss-local-services") == b"kept"


def test_a_port_held_by_another_program_stops_up_before_anything_starts(env, data_dir):
    redis_port = int(env["LOCAL_REDIS_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", redis_port))
        squatter.listen()

        result = _services(env, "up")

    assert (result.returncode, result.stdout) == (1, "")
    assert f"127.0.0.1:{redis_port} is already in use by " in result.stderr
    assert "pick another port with LOCAL_REDIS_PORT=..." in result.stderr
    assert not (data_dir / "postgres").exists()
    assert not Path(env["LOCAL_SERVICES_FILE"]).exists()


def test_a_redis_we_did_not_start_is_named(tmp_path, data_dir):
    services = local_services()
    with ProcessSet(tmp_path) as procs:
        foreign = PrivateRedis(procs)
        foreign.start()
        settings = services.Settings(
            pg_port=free_port(), redis_port=foreign.port, pg_version=16, data_dir=data_dir
        )

        with pytest.raises(services.ServiceError) as raised:
            services.redis_is_ours(settings)

    assert str(raised.value) == (
        f"127.0.0.1:{foreign.port} is already in use by a Redis we did not start; "
        "stop it or pick another port with LOCAL_REDIS_PORT=..."
    )
