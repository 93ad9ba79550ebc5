"""Cursor pagination for the store API whose bad input is a 400 naming the parameter.

DRF's CursorPagination ignores a `page_size` it cannot read (the caller silently gets the
default), answers an undecodable `cursor` with 404 "Invalid cursor", and passes a decodable
cursor's position to the database as it is: a hand-made position that is not a value of the
ordering field (`p=abc` for an integer id, an offset PostgreSQL refuses for a timestamp) raised
a 500. Here the position is parsed by the ordering field and, for times, moved to UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.exceptions import FieldDoesNotExist, ValidationError
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination

from apps.core.errors import ApplicationError

_NOT_A_CURSOR = "Not a cursor this API returned (follow the `next` and `previous` links)."


def _invalid(name: str, message: str) -> ApplicationError:
    return ApplicationError(f"Invalid input in: {name}.", fields={name: [message]})


class StoreCursorPagination(CursorPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= self.max_page_size:
            raise _invalid(
                self.page_size_query_param, f"Must be an integer from 1 to {self.max_page_size}."
            )
        return int(raw)

    def decode_cursor(self, request) -> Cursor | None:
        try:
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                cursor = cursor._replace(position=self._position(cursor.position))
        except (NotFound, FieldDoesNotExist, ValidationError, ValueError, OverflowError):
            raise _invalid(self.cursor_query_param, _NOT_A_CURSOR) from None
        return cursor

    def _position(self, raw: str) -> str:
        """The position as the ordering field's value (times in UTC); ValueError if it is not
        one."""
        value = self._model._meta.get_field(self.ordering[0].lstrip("-")).to_python(raw)
        if value is None:
            raise ValueError(raw)
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return str(value.astimezone(UTC))
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise ValueError(raw)
        return str(value)
