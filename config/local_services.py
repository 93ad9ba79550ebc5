"""How a development process finds the embedded PostgreSQL and Redis, and what it says when a
database or Redis cannot be reached.

`make run` / `make test` start embedded servers when DATABASE_URL / REDIS_URL are unset
(deploy/local/services.py), which record their URLs in `.data/services.env`
(`LOCAL_SERVICES_FILE` moves it). The entry points (manage.py, config/asgi.py, config/wsgi.py,
config/celery.py) call `local_services_use()` before the settings load, so a staff command run
as the README writes it (`.venv/bin/python manage.py list_tenants`) reaches them too. Precedence:
the process environment, then `.env`, then the recorded URLs, then the settings' defaults.
Production settings never read the recorded URLs.

Standard library and django-environ only: this runs before Django is set up.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
SERVICE_KEYS = ("DATABASE_URL", "REDIS_URL")
RUN_KEYS = ("PUBLIC_PORT",)
PRODUCTION_SETTINGS = "config.settings.production"


def services_file(env: MutableMapping[str, str] = os.environ) -> Path:
    """Where deploy/local/services.py records the embedded servers' URLs."""
    return Path(env.get("LOCAL_SERVICES_FILE") or BASE_DIR / ".data" / "services.env")


def local_services_use(env: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Fill DATABASE_URL / REDIS_URL that are unset or empty (after reading `.env`) from the
    recorded embedded servers' URLs, and PUBLIC_PORT from the port `make run` serves on;
    returns what it set. Nothing under production settings
    or without a recorded file."""
    if env.get("DJANGO_SETTINGS_MODULE") == PRODUCTION_SETTINGS:
        return {}
    if env is os.environ:  # as the settings will (overwrite=False): the process's values win
        environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
    path = services_file(env)
    filled = {}
    # run.env, written by `make run` beside it, records the port the platform listens on, so
    # the store URLs a staff command prints are the ones that answer.
    for recorded, keys in ((path, SERVICE_KEYS), (path.with_name("run.env"), RUN_KEYS)):
        if not recorded.is_file():
            continue
        for line in recorded.read_text().splitlines():
            key, _, value = line.strip().partition("=")
            if key in keys and value and not env.get(key):
                env[key] = filled[key] = value
    return filled


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _reason(exc: BaseException) -> str:
    """The server's or the socket's own words, on one line ('Connection refused',
    'database "x" does not exist')."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = text.rsplit("failed: ", 1)[-1]
    return text.replace("FATAL:  ", "").strip().rstrip(".")


def _database_url() -> str:
    from django.conf import settings

    db = settings.DATABASES["default"]
    host = db.get("HOST") or "localhost"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    user = f"{db['USER']}@" if db.get("USER") else ""
    return f"postgres://{user}{host}{port}/{db.get('NAME', '')}"


def unreachable_message(exc: BaseException) -> str | None:
    """One line naming the database or Redis that `exc` failed to reach and what to do, or
    None when `exc` is something else (a query error on a working database, say)."""
    import redis
    from django.db import DatabaseError, connections

    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        from django.conf import settings

        return (
            f"Cannot reach Redis at {_without_password(settings.REDIS_URL)} ({_reason(exc)}): "
            "start it with `make run` or set REDIS_URL"
        )
    if isinstance(exc, DatabaseError):
        connection = connections["default"]
        try:  # a working database makes this a query error, not ours to rephrase
            connection.close()
            connection.ensure_connection()
        except DatabaseError as again:
            return (
                f"Cannot reach PostgreSQL at {_database_url()} ({_reason(again)}): "
                "start it with `make run` or set DATABASE_URL"
            )
    return None
