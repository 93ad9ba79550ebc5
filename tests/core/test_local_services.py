"""Staff commands run as the README writes them (`.venv/bin/python manage.py list_tenants`, no
DATABASE_URL / REDIS_URL) use the embedded servers' URLs recorded under .data/, and a database or
Redis that cannot be reached is one line naming it, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.local_services import local_services_use

pytestmark = pytest.mark.django_db

REPO = Path(settings.BASE_DIR)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manage(services_file: Path, *args: str) -> subprocess.CompletedProcess:
    """manage.py as a person types it: no DATABASE_URL / REDIS_URL (empty, so a developer's .env
    cannot supply them either), default settings module."""
    env = {
        key: value
        for key, value in os.environ.items()
        # SHELFSENSE_PROCESS: set in this process once a test imported config.asgi/wsgi
        if key
        not in (
            "DATABASE_URL",
            "REDIS_URL",
            "DJANGO_SETTINGS_MODULE",
            "SHELFSENSE_PROCESS",
            "PUBLIC_PORT",
            "WEB_PORT",
        )
    }
    env.update(DATABASE_URL="", REDIS_URL="", LOCAL_SERVICES_FILE=str(services_file))
    return subprocess.run(  # noqa: S603 (our own interpreter and manage.py)
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _test_database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def test_list_tenants_uses_the_recorded_embedded_servers(alpha, beta, tmp_path):
    # given: the URLs that `make run`'s embedded servers recorded (here: this run's database)
    recorded = tmp_path / "services.env"
    recorded.write_text(f"DATABASE_URL={_test_database_url()}\nREDIS_URL={settings.REDIS_URL}\n")
    # and the port `make run` serves on
    (tmp_path / "run.env").write_text("PUBLIC_PORT=54321\n")

    result = _manage(recorded, "list_tenants")

    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["SLUG", "STATUS", "SCHEMA", "CREATED", "URL"]
    listed = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert listed["alpha"][:3] == ["alpha", "active", "store_alpha"]
    assert listed["beta"][:3] == ["beta", "active", "store_beta"]
    assert listed["alpha"][-1] == "http://alpha.localhost:54321/"


def test_unreachable_database_is_one_line_naming_it(tmp_path):
    port = _closed_port()
    recorded = tmp_path / "services.env"
    recorded.write_text(
        f"DATABASE_URL=postgres://postgres@127.0.0.1:{port}/shelfsense\n"
        f"REDIS_URL={settings.REDIS_URL}\n"
    )

    result = _manage(recorded, "list_tenants")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Cannot reach PostgreSQL at postgres://postgres@127.0.0.1:{port}/shelfsense "
        "(Connection refused): start it with `make run` or set DATABASE_URL\n"
    )


def test_missing_database_is_one_line_naming_it(tmp_path):
    db = connection.settings_dict
    recorded = tmp_path / "services.env"
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/ss_no_such_database"
    recorded.write_text(f"DATABASE_URL={url}\nREDIS_URL={settings.REDIS_URL}\n")

    result = _manage(recorded, "list_tenants")

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f'Cannot reach PostgreSQL at {url} (database "ss_no_such_database" does not exist): '
        "start it with `make run` or set DATABASE_URL\n"
    )


def test_unreachable_redis_is_one_line_naming_it(tmp_path):
    port = _closed_port()
    recorded = tmp_path / "services.env"
    recorded.write_text(
        f"DATABASE_URL={_test_database_url()}\nREDIS_URL=redis://127.0.0.1:{port}/0\n"
    )

    result = _manage(
        recorded,
        "shell",
        "-v",
        "0",
        "-c",
        "from django.core.cache import cache; cache.get('probe')",
    )

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(f"Cannot reach Redis at redis://127.0.0.1:{port}/0 (")
    assert result.stderr.endswith("): start it with `make run` or set REDIS_URL\n")
    assert result.stderr.count("\n") == 1


def test_set_urls_win_over_recorded_ones_and_production_never_reads_them(tmp_path):
    recorded = tmp_path / "services.env"
    recorded.write_text("DATABASE_URL=postgres://x@127.0.0.1:1/recorded\nREDIS_URL=redis://r/0\n")
    base = {"LOCAL_SERVICES_FILE": str(recorded)}

    unset = dict(base)
    assert local_services_use(unset) == {
        "DATABASE_URL": "postgres://x@127.0.0.1:1/recorded",
        "REDIS_URL": "redis://r/0",
    }
    partly = {**base, "DATABASE_URL": "postgres://mine/db", "REDIS_URL": ""}
    assert local_services_use(partly) == {"REDIS_URL": "redis://r/0"}
    assert partly["DATABASE_URL"] == "postgres://mine/db"
    production = {**base, "DJANGO_SETTINGS_MODULE": "config.settings.production"}
    assert local_services_use(production) == {}
    assert "DATABASE_URL" not in production
