"""The embedded PostgreSQL: the postmaster of our data folder (stale pid files removed),
initdb on first run, start (TCP on 127.0.0.1 only) and fast stop with `pg_ctl`, and the
`shelfsense` database."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .accounts import grant_traversal, own_data_dir
from .binaries import pg_bin_dir
from .common import (
    HOST,
    PG_DATABASE,
    PG_SUPERUSER,
    REPO_ROOT,
    START_TIMEOUT_S,
    Account,
    ServiceError,
    Settings,
    log,
)
from .processes import process_cmdline, refuse_busy_port, run, tail, wait_for_port


@dataclass(frozen=True)
class Postmaster:
    pid: int
    port: int
    status: str


def read_postmaster(pg_data: Path) -> Postmaster | None:
    """The postmaster described by ``postmaster.pid`` if it is alive, else ``None``.

    A pid file whose process is gone, or whose pid now belongs to another program (a
    crash followed by pid reuse), is stale: it is removed so that ``pg_ctl start`` works.
    """
    pid_file = pg_data / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except FileNotFoundError:
        return None
    except PermissionError as exc:
        raise ServiceError(f"cannot read {pid_file}: {exc}") from None
    try:
        pid, port = int(lines[0]), int(lines[3])
        status = lines[7].strip() if len(lines) > 7 else ""
    except (IndexError, ValueError):
        pid, port, status = 0, 0, ""
    cmdline = process_cmdline(pid) if pid > 0 else None
    if cmdline and str(pg_data) in cmdline:
        return Postmaster(pid=pid, port=port, status=status)
    log.warning("removing stale %s (pid %s is not our postmaster)", pid_file, pid or "?")
    pid_file.unlink(missing_ok=True)
    return None


def initdb(bin_dir: Path, pg_data: Path, account: Account | None) -> None:
    locale = "C.UTF-8" if sys.platform.startswith("linux") else "en_US.UTF-8"
    log.info("initdb %s (UTF8, locale %s, trust auth)", pg_data, locale)
    run(
        [
            bin_dir / "initdb",
            "--pgdata",
            pg_data,
            "--username",
            PG_SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            locale,
        ],
        account=account,
        cwd=pg_data,
        timeout=300,
    )


def psql(bin_dir: Path, port: int, sql: str) -> str:
    return run(
        [
            bin_dir / "psql",
            "--no-psqlrc",
            "--no-align",
            "--tuples-only",
            "--set",
            "ON_ERROR_STOP=1",
            "--host",
            HOST,
            "--port",
            str(port),
            "--username",
            PG_SUPERUSER,
            "--dbname",
            "postgres",
            "--command",
            sql,
        ],
        account=None,
        cwd=REPO_ROOT,
    ).strip()


def postgres_up(settings: Settings, account: Account | None) -> None:
    """Start our PostgreSQL (initdb on first run) or reuse it, and create the database.

    ServiceError: the port is taken by something else, ours runs on another port, or the
    data folder is from another major version or a half-finished initdb.
    """
    bin_dir = pg_bin_dir(settings.pg_version)
    pg_data, pg_log = settings.pg_data, settings.pg_log
    running = read_postmaster(pg_data)
    if running is not None:
        if running.port != settings.pg_port:
            raise ServiceError(
                f"our PostgreSQL already runs on port {running.port}, not {settings.pg_port}; "
                f"run `down` first or set LOCAL_PG_PORT={running.port}"
            )
        log.info("postgres: reusing pid %s on %s:%s", running.pid, HOST, running.port)
    else:
        refuse_busy_port(settings.pg_port, "PostgreSQL", "LOCAL_PG_PORT")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        grant_traversal(bin_dir.parent, account)
        grant_traversal(settings.data_dir, account)
        own_data_dir(pg_data, account)
        initialised = (pg_data / "PG_VERSION").exists()
        if initialised:
            found = int((pg_data / "PG_VERSION").read_text().strip())
            if found != settings.pg_version:
                raise ServiceError(
                    f"{pg_data} was initialised by PostgreSQL {found}; set "
                    f"LOCAL_PG_VERSION={found} or remove the folder (after `down`) to start afresh"
                )
        elif any(pg_data.iterdir()):
            raise ServiceError(
                f"{pg_data} is not empty but holds no cluster (PG_VERSION missing): an interrupted "
                "initdb? Remove the folder and run `up` again"
            )
        else:
            initdb(bin_dir, pg_data, account)
        log.info(
            "postgres: starting PostgreSQL %s on %s:%s", settings.pg_version, HOST, settings.pg_port
        )
        # TCP only (-k '' disables the Unix socket, whose path length is a portability trap).
        # synchronous_commit=off: a crash may lose the last few commits, never corrupt data.
        options = f"-h {HOST} -p {settings.pg_port} -k '' -c synchronous_commit=off"
        try:
            run(
                [
                    bin_dir / "pg_ctl",
                    "start",
                    "--wait",
                    "--timeout",
                    str(START_TIMEOUT_S),
                    "--pgdata",
                    pg_data,
                    "--log",
                    pg_log,
                    "-o",
                    options,
                ],
                account=account,
                cwd=pg_data,
                timeout=START_TIMEOUT_S + 10,
            )
        except ServiceError as exc:
            raise ServiceError(f"{exc}\n--- {pg_log} ---\n{tail(pg_log)}") from None
    wait_for_port(settings.pg_port, "PostgreSQL", pg_log)
    query = f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"
    if psql(bin_dir, settings.pg_port, query) != "1":
        log.info("postgres: creating database %s", PG_DATABASE)
        psql(bin_dir, settings.pg_port, f'CREATE DATABASE "{PG_DATABASE}"')


def postgres_down(settings: Settings, account: Account | None) -> None:
    """Stop our PostgreSQL (`pg_ctl stop -m fast`); not running is not an error."""
    pg_data, pg_log = settings.pg_data, settings.pg_log
    running = read_postmaster(pg_data)
    if running is None:
        log.info("postgres: not running")
        return
    log.info("postgres: stopping pid %s", running.pid)
    try:
        run(
            [
                pg_bin_dir(settings.pg_version) / "pg_ctl",
                "stop",
                "--wait",
                "--mode",
                "fast",
                "--timeout",
                str(START_TIMEOUT_S),
                "--pgdata",
                pg_data,
            ],
            account=account,
            cwd=pg_data,
            timeout=START_TIMEOUT_S + 10,
        )
    except ServiceError as exc:
        raise ServiceError(f"{exc}\n--- {pg_log} ---\n{tail(pg_log)}") from None
