"""Start and stop the HTTP server the benchmarks load, the way production runs it: granian
through deploy/web.sh (the Dockerfile's CMD); or, for comparison, gunicorn gthread or uvicorn
(the `ws` service, and `make run`). Imports nothing from Django."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB_SCRIPT = ROOT / "deploy" / "web.sh"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(
    kind: str, port: int, workers: int, threads: int, worker_class: str | None, root: Path = ROOT
) -> list[str]:
    venv = ROOT / ".venv" / "bin"
    if kind == "granian":
        return [str(root / WEB_SCRIPT.relative_to(ROOT))]
    if kind == "gunicorn":
        return [
            str(venv / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--threads", str(threads),
            "--worker-class", worker_class or "gthread", "--keep-alive", "30",
        ]  # fmt: skip
    return [
        str(venv / "uvicorn"), "config.asgi:application", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--no-access-log",
        "--lifespan", "off", "--log-level", "warning",
    ]  # fmt: skip


def start_server(
    kind: str,
    port: int,
    *,
    workers: int,
    threads: int,
    env: dict[str, str],
    worker_class: str | None = None,
    root: Path = ROOT,
) -> subprocess.Popen:
    """Start the server from the checkout at `root` (default: this one) and wait (30 s at
    most) until /healthz answers."""
    process = subprocess.Popen(
        server_command(kind, port, workers, threads, worker_class, root),
        cwd=root,
        env={
            **os.environ,
            **env,
            # Read by deploy/web.sh.
            "GRANIAN": str(ROOT / ".venv" / "bin" / "granian"),
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(port),
            "WEB_CONCURRENCY": str(workers),
            "WEB_THREADS": str(threads),
        },
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    stop_server(process)
    raise SystemExit(f"{kind} did not answer /healthz on port {port} within 30 s.")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
