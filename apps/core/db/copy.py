"""COPY on a Django cursor: Django's cursor has none, so the bulk paths use psycopg's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db.backends.utils import CursorWrapper


@contextmanager
def raw_copy(cursor: CursorWrapper, statement: str, types: list[str]) -> Iterator[psycopg.Copy]:
    """psycopg's `COPY` through the Django `cursor`, binary columns of `types`, with its errors
    raised as Django's: a database going away mid-copy is then the 503 any other query's failure
    is (apps.core.errors), not a 500."""
    with cursor.db.wrap_database_errors, cursor.cursor.copy(statement) as copy:
        copy.set_types(types)
        yield copy
