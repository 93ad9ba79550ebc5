"""Structured logs: every record carries the store (the connection's schema) and the request id
(the HTTP request's, or the Celery task's id), and LOG_FORMAT=json writes one JSON object a
line for the log pipeline.

The request id comes from the `X-Request-ID` header when it is a sane token (a proxy or the
caller set it), else a new one; it is sent back in the response's `X-Request-ID`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime

from django.db import connection
from django.http import HttpRequest, HttpResponse

from apps.core.ids import random_id

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_META = "HTTP_X_REQUEST_ID"
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Attributes every LogRecord has: anything else was passed with `extra=` and is logged too.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # From META: `request.headers` would build a mapping of every header (and, under
        # granian, of the process environment merged into each request's environ) to read one.
        supplied = request.META.get(_REQUEST_ID_META, "")
        request_id = supplied if _SANE_ID.match(supplied) else random_id()
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


def _task_id() -> str:
    from celery import current_task

    task = current_task
    return (task.request.id or "") if task else ""


class LogContextFilter(logging.Filter):
    """Adds `store` (schema name, "" on the public schema) and `request_id` to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        schema = getattr(connection, "schema_name", "") or ""
        record.store = "" if schema == "public" else schema
        record.request_id = request_id_var.get() or _task_id()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "store": getattr(record, "store", ""),
            "request_id": getattr(record, "request_id", ""),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
