"""The commands: `up` (start or reuse both servers, record their URLs), `down`, `status`, and
the command line that runs them (exit 0; 1 with a message on stderr; 3 from `status` when a
server is not running)."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from .accounts import data_owner, service_account
from .common import HOST, ServiceError, Settings, log
from .postgres_server import postgres_down, postgres_up, read_postmaster
from .redis_server import redis_down, redis_is_ours, redis_up


@contextlib.contextmanager
def exclusive(settings: Settings) -> Iterator[None]:
    """Serialise concurrent `up`/`down` runs (e.g. two make targets started together)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(settings.lock_file, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def up(settings: Settings | None = None) -> dict[str, str]:
    """Ensure both servers run (starting or reusing them); return the URLs to use, also
    recorded in ``.data/services.env`` (see ``record_urls``).

    Idempotent. Side effects on first run: creates ``.data/postgres`` (initdb) and
    ``.data/redis``; as root, also the ``shelfsense-local`` system user (see README).
    """
    settings = settings or Settings.from_env()
    with exclusive(settings):
        account = service_account()
        redis_is_ours(settings)  # fail on a taken port before starting anything
        postgres_up(settings, account)
        redis_up(settings, account)
        urls = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}
        record_urls(urls, settings)
    return urls


def record_urls(urls: dict[str, str], settings: Settings | None = None) -> Path:
    """Write ``urls`` as KEY=VALUE lines to ``.data/services.env`` (``LOCAL_SERVICES_FILE``),
    where manage.py, Celery and the ASGI/WSGI apps look for the embedded servers when
    DATABASE_URL / REDIS_URL are unset (config/local_services.py). Kept after ``down``, so a
    command run then names the server it cannot reach."""
    path = (settings or Settings.from_env()).services_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key}={value}\n" for key, value in urls.items()))
    return path


def down(settings: Settings | None = None) -> None:
    """Stop both servers cleanly (PostgreSQL fast shutdown, Redis SHUTDOWN SAVE); keep data."""
    settings = settings or Settings.from_env()
    with exclusive(settings):
        postgres_down(settings, data_owner(settings.pg_data))
        redis_down(settings)


def status(settings: Settings | None = None, out: TextIO | None = None) -> bool:
    """Print one line per server (to stdout by default); return True if both run."""
    settings = settings or Settings.from_env()
    out = out or sys.stdout
    pg_data, redis_data = settings.pg_data, settings.redis_data
    postmaster = read_postmaster(pg_data) if pg_data.exists() else None
    if postmaster is not None:
        version = (pg_data / "PG_VERSION").read_text().strip()
        print(
            f"postgres: running pid {postmaster.pid}, PostgreSQL {version}, "
            f"{HOST}:{postmaster.port}, status {postmaster.status or '?'}, data {pg_data}",
            file=out,
        )
    else:
        print(f"postgres: stopped (data {pg_data})", file=out)
    try:
        redis_running = redis_is_ours(settings)
        redis_note = "" if redis_running else f" (data {redis_data})"
    except ServiceError as exc:
        redis_running, redis_note = False, f": {exc}"
    if redis_running:
        pidfile = settings.redis_pidfile
        pid = pidfile.read_text().strip() if pidfile.exists() else "?"
        where = f"{HOST}:{settings.redis_port}"
        print(f"redis: running pid {pid}, {where}, data {redis_data}", file=out)
    else:
        print(f"redis: stopped{redis_note}", file=out)
    return postmaster is not None and redis_running


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: `up` prints the two URL lines on stdout, logs go to stderr."""
    parser = argparse.ArgumentParser(
        prog="services.py",
        description="Embedded PostgreSQL and Redis for local development (data in .data/).",
    )
    parser.add_argument("command", choices=("up", "down", "status"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="services: %(message)s", stream=sys.stderr)
    started = time.monotonic()
    try:
        if args.command == "up":
            urls = up()
            log.info("up in %.2fs", time.monotonic() - started)
            for key, value in urls.items():
                print(f"{key}={value}")
        elif args.command == "down":
            down()
        else:
            return 0 if status() else 3
    except ServiceError as exc:
        log.error("%s", exc)
        return 1
    return 0
