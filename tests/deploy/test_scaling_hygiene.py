"""Code kept ready for the path past one database (deploy/SCALING.md): stores can be moved to
other PostgreSQL clusters (or Citus shards) and Redis Cluster slots only if no query joins two
stores' schemas and every Redis key names its store.

- Redis: no command of apps/ takes a key written out in place (a literal, an f-string, a
  concatenation); keys come from helpers built on `apps.core.cache.tenant_key`, whose first
  part is the store's schema (the platform's own keys use the public schema's name).
- SQL: no statement of apps/ names a schema other than the public one (the platform's shared
  tables), pg_temp, pg_catalog or information_schema, except the tools that administer every
  store's schema, listed below with their reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from apps.core.cache import tenant_key

APPS = Path(settings.BASE_DIR) / "apps"
REDIS_COMMANDS = {
    "get", "set", "setex", "getdel", "incr", "incrby", "decr", "expire", "ttl", "delete",
    "exists", "mget", "hincrby", "hget", "hset", "hmget", "hgetall", "hdel", "rpush", "lpush",
    "lrange", "ltrim", "llen", "lpop", "rpop", "sadd", "srem", "smembers", "spop", "sismember",
    "scard", "zadd", "zrange", "zrangebyscore", "zremrangebyscore", "zincrby", "zscore",
    "pfadd", "pfcount", "lock",
}  # fmt: skip
REDIS_RECEIVER = re.compile(r"redis|client|pipe", re.IGNORECASE)
# `extract(epoch FROM e."timestamp")` qualifies a column, not a table; SQL keywords are in
# capitals in this code base (Python's `from x.y import` is not SQL).
QUALIFIED = re.compile(
    r"(?<!epoch )\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+"
    r"\"?([A-Za-z_{}][A-Za-z0-9_{}]*)\"?\.\"?[A-Za-z_]"
)
SHARED_SCHEMAS = {"public", "pg_temp", "pg_catalog", "information_schema"}
# Tools that work on every store's schema by design (never on a request path).
CROSS_SCHEMA_TOOLS = {
    # setup_platform: one query reads every store's migration state and beat entries.
    "apps/tenants/store_migrations.py",
    # beat's change check reads the public schema's row, its name formatted in.
    "apps/tenants/beat.py",
}


def _python_files() -> list[Path]:
    return [p for p in APPS.rglob("*.py") if "migrations" not in p.parts]


def redis_keys_written_in_place(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in REDIS_COMMANDS
            and node.args
            and REDIS_RECEIVER.search(ast.unparse(node.func.value))
            and isinstance(node.args[0], ast.Constant | ast.JoinedStr | ast.BinOp)
        ):
            found.append(ast.unparse(node))
    return found


def other_schemas_named(source: str) -> list[str]:
    return [
        schema
        for schema in QUALIFIED.findall(source)
        if schema.lower() not in SHARED_SCHEMAS and schema != "{public}"
    ]


def test_the_checks_catch_what_they_look_for():
    source = (
        "redis_client().get('totals')\n"
        "pipe.hincrby(f'usage:{minute}', 'total', 1)\n"
        "redis_client().get(tenant_key('totals'))\n"
        "cursor.execute('SELECT * FROM store_beta.catalog_item')\n"
        "cursor.execute('SELECT * FROM public.tenants_tenant')\n"
        "cursor.execute('SELECT extract(epoch FROM e.\"timestamp\") FROM catalog_event e')\n"
    )

    assert redis_keys_written_in_place(source) == [
        "redis_client().get('totals')",
        "pipe.hincrby(f'usage:{minute}', 'total', 1)",
    ]
    assert other_schemas_named(source) == ["store_beta"]


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: str(p.relative_to(APPS.parent)))
def test_no_redis_key_is_written_in_place(path):
    assert redis_keys_written_in_place(path.read_text()) == []


def test_no_sql_names_another_store_schema():
    offenders = {
        str(path.relative_to(APPS.parent)): schemas
        for path in _python_files()
        if str(path.relative_to(APPS.parent)) not in CROSS_SCHEMA_TOOLS
        and (schemas := other_schemas_named(path.read_text()))
    }

    assert offenders == {}


@pytest.mark.django_db
def test_tenant_keys_start_with_their_store(alpha):
    assert tenant_key("recs", "x", schema_name="store_alpha").startswith("store_alpha:")
    connection.set_tenant(alpha)
    try:
        assert tenant_key("recs", "x").startswith("store_alpha:")
    finally:
        connection.set_schema_to_public()
