"""What merchandising erases and exports of a shopper (registered in apps.core.erasure by
MerchandisingConfig.ready): the lists each rotating placement last showed them, in Redis."""

from __future__ import annotations

import orjson
from django.db import connection

from apps.catalog.models import SessionLink
from apps.core.cache import redis_client
from apps.merchandising.models import Placement
from apps.merchandising.placing import rotation_key


def _keys(user_id: str) -> dict[str, list[str]]:
    """Rotation keys of the shopper per placement: theirs and their linked sessions'."""
    schema = connection.schema_name
    sessions = list(
        SessionLink.objects.filter(user_id=user_id).values_list("session_id", flat=True)
    )
    subjects = [f"u:{user_id}", *(f"s:{session}" for session in sessions)]
    return {
        name: [rotation_key(schema, name, subject) for subject in subjects]
        for name in Placement.objects.values_list("name", flat=True)
    }


def shopper_rotation_erase(user_id: str) -> int:
    """Delete the shopper's rotation state. Raises redis.RedisError."""
    keys = [key for per in _keys(user_id).values() for key in per]
    return redis_client().delete(*keys) if keys else 0


def shopper_rotation_export(user_id: str) -> dict[str, list[str]]:
    """{placement: the list it last showed the shopper} for rotating placements."""
    out = {}
    client = redis_client()
    for name, keys in _keys(user_id).items():
        value = client.get(keys[0])
        if value is not None:
            out[name] = orjson.loads(value)
    return out
