"""Shopper PII at rest (issue 13): attributes are encrypted with PII_ENCRYPTION_KEYS (the first
encrypts, all decrypt), reads and exports return them, values stored before encryption are
migrated, keys rotate, and production refuses to start without a key."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from types import SimpleNamespace

import orjson
import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection
from django_tenants.utils import tenant_context

from apps.catalog.models import Shopper
from apps.catalog.services import shoppers_pii_reencrypt
from apps.core import pii

pytestmark = pytest.mark.django_db

ATTRIBUTES = {"email": "ann@example.com", "tier": "gold", "birth_year": 1984}


def _raw(tenant, user_id: str) -> str:
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute("SELECT attributes FROM catalog_shopper WHERE user_id = %s", [user_id])
        return cursor.fetchone()[0]


@pytest.fixture
def pii_keys(settings):
    """`pii_keys(*keys)` switches the process to those keys for the test."""

    def use(*keys: bytes) -> None:
        settings.PII_ENCRYPTION_KEYS = [key.decode() for key in keys]
        pii.keys_changed()

    yield use
    pii.keys_changed()


def test_attributes_are_encrypted_in_the_column_and_read_back_in_clear(alpha, api):
    # Given a shopper's attributes sent through the API
    client = api(alpha)
    put = client.put(
        "/api/v1/users/s-1",
        data=orjson.dumps({"attributes": ATTRIBUTES}),
        content_type="application/json",
    )

    # When the raw column and the API's reads are compared
    raw = _raw(alpha, "s-1")
    export = client.get("/api/v1/users/s-1/export").json()

    # Then the column holds a Fernet token without any of the values; reads are in clear
    assert put.status_code == 201
    assert put.json()["attributes"] == ATTRIBUTES
    assert raw.startswith("gAAAAA")
    for value in ("ann@example.com", "gold", "1984", "email", "tier"):
        assert value not in raw
    assert export["profile"]["attributes"] == ATTRIBUTES
    with tenant_context(alpha):
        assert Shopper.objects.get(user_id="s-1").attributes == ATTRIBUTES


def test_values_stored_before_encryption_are_read_and_migrated(alpha):
    # Given a value written in clear before encryption existed (as the jsonb column held it)
    with tenant_context(alpha), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO catalog_shopper (user_id, attributes, created_at, updated_at) "
            "VALUES ('old', %s, now(), now())",
            ['{"tier": "gold", "email": "old@example.com"}'],
        )
        readable = Shopper.objects.get(user_id="old").attributes

        # When the migration's data step runs
        migration = importlib.import_module(
            "apps.catalog.migrations.0004_shopper_attributes_encrypted"
        )
        migration.encrypt_existing(None, SimpleNamespace(connection=connection))
        migrated = Shopper.objects.get(user_id="old").attributes

    # Then the value was readable before and after, and is encrypted now
    assert readable == migrated == {"tier": "gold", "email": "old@example.com"}
    assert _raw(alpha, "old").startswith("gAAAAA")
    assert "old@example.com" not in _raw(alpha, "old")


def test_keys_rotate_without_losing_a_value(alpha, pii_keys):
    old, new = Fernet.generate_key(), Fernet.generate_key()
    # Given a value encrypted under the old key
    pii_keys(old)
    with tenant_context(alpha):
        Shopper.objects.create(user_id="r-1", attributes=ATTRIBUTES)

        # When the new key is put first, and the store re-encrypted
        pii_keys(new, old)
        still_readable = Shopper.objects.get(user_id="r-1").attributes
        rewritten = shoppers_pii_reencrypt()

        # Then, with the old key removed, the value is still read
        pii_keys(new)
        after = Shopper.objects.get(user_id="r-1").attributes
    assert still_readable == after == ATTRIBUTES
    assert rewritten == 1
    assert Fernet(new).decrypt(_raw(alpha, "r-1").encode()) == orjson.dumps(ATTRIBUTES)


def test_production_refuses_to_start_without_a_pii_key():
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PII_", "EMAIL_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY="x" * 60,
        ALLOWED_HOSTS="shelfsense.example.com",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/x",
        REDIS_URL="redis://127.0.0.1:6379/0",
        EMAIL_URL="smtp+tls://mailer:secret@smtp.example.com:587",
    )

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert "PII_ENCRYPTION_KEYS must be set in production." in result.stderr
