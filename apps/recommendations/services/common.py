"""What every recommendations service shares: the guard that a call runs in a store's schema,
the label of API-key-started versions, and where the members' notifications point."""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from apps.core.errors import ApplicationError

# `started_by_label` of versions an API key started: "api_key:<prefix>".
API_KEY_LABEL_PREFIX = "api_key:"
# Where a store's notifications about training and activation point (the dashboard's models page).
MODELS_LINK = "/models/"


def store_schema() -> str:
    """The current connection's schema; ApplicationError on the public schema (recommendations
    belong to a store)."""
    schema = connection.schema_name
    if schema == settings.PUBLIC_SCHEMA_NAME:
        raise ApplicationError("Recommendations belong to a store, not the public schema.")
    return schema
