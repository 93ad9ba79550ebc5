"""Settings from the environment (ports, PostgreSQL version, data folder), the layout of the
data folder, and `ServiceError`, the one error meant for the person running the script."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_DATA_DIR = REPO_ROOT / ".data"

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


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ServiceError(f"{name} must be an integer, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """Where the servers listen, which PostgreSQL runs, and the folder holding their data."""

    pg_port: int
    redis_port: int
    pg_version: int
    data_dir: Path = DEFAULT_DATA_DIR

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            pg_port=_int_env("LOCAL_PG_PORT", 55432),
            redis_port=_int_env("LOCAL_REDIS_PORT", 56379),
            pg_version=_int_env("LOCAL_PG_VERSION", 16),
            data_dir=Path(os.environ.get("LOCAL_DATA_DIR") or DEFAULT_DATA_DIR).resolve(),
        )

    @property
    def database_url(self) -> str:
        return f"postgres://{PG_SUPERUSER}@{HOST}:{self.pg_port}/{PG_DATABASE}"

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.redis_port}/0"

    @property
    def pg_data(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def pg_log(self) -> Path:
        return self.pg_data / "server.log"

    @property
    def redis_data(self) -> Path:
        return self.data_dir / "redis"

    @property
    def redis_conf(self) -> Path:
        return self.redis_data / "redis.conf"

    @property
    def redis_pidfile(self) -> Path:
        return self.redis_data / "redis.pid"

    @property
    def redis_log(self) -> Path:
        return self.redis_data / "redis.log"

    @property
    def lock_file(self) -> Path:
        return self.data_dir / ".services.lock"

    @property
    def services_file(self) -> Path:
        """Where `up` records the URLs: LOCAL_SERVICES_FILE, else `services.env` in the data
        folder (read by config/local_services.py)."""
        return Path(os.environ.get("LOCAL_SERVICES_FILE") or self.data_dir / "services.env")


@dataclass(frozen=True)
class Account:
    """The OS account the servers run as; ``None`` everywhere means "the current user"."""

    name: str
    uid: int
    gid: int
