"""Request bodies of the store data API: JSON read with orjson under the upload limit (413
beyond it, 400 when malformed) and the shape of a batch."""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework.parsers import BaseParser

from apps.core.errors import ApplicationError


def _too_large() -> ApplicationError:
    limit_mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
    return ApplicationError(
        f"The request body is larger than {limit_mb} MB.", code="too_large", status_code=413
    )


def _declared_length(request) -> int:
    raw = request.META.get("CONTENT_LENGTH") or "0"
    try:
        return int(raw)
    except ValueError:
        raise ApplicationError("Invalid Content-Length header.", code="bad_request") from None


def _malformed(exc: Exception) -> ApplicationError:
    return ApplicationError(f"Malformed JSON: {exc}", code="parse_error")


class OrjsonParser(BaseParser):
    """JSON bodies via orjson, refused with 413 beyond DATA_UPLOAD_MAX_MEMORY_SIZE (DRF reads
    the stream itself and would otherwise skip Django's limit)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise _too_large()
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _malformed(exc) from None


def raw_json_body(request) -> Any:
    """The request body parsed with orjson, without DRF's parser machinery. 413 beyond the
    upload limit whether the client declared the length or not; 400 for malformed JSON."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if _declared_length(request) > limit:
        raise _too_large()
    try:
        body = request.body
    except RequestDataTooBig:
        raise _too_large() from None
    if len(body) > limit:
        raise _too_large()
    if not body:
        raise ApplicationError("The request body is empty.", code="parse_error")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _malformed(exc) from None


def batch_rows(data: Any, *, key: str, limit: int) -> list[Any]:
    """A batch is a JSON array, or an object whose only field `key` is that array."""
    if isinstance(data, dict):
        unknown = sorted(name for name in data if name != key)
        if unknown:
            raise ApplicationError(
                f"Unknown field(s): {', '.join(unknown)}.",
                fields={name: ["Unknown field."] for name in unknown},
            )
        data = data.get(key)
    if not isinstance(data, list):
        raise ApplicationError(
            f"Send a JSON array of {key}, or an object with a `{key}` array.",
            fields={key: ["Must be a list."]},
        )
    if not data:
        raise ApplicationError("The batch is empty.", fields={key: ["Must not be empty."]})
    if len(data) > limit:
        raise ApplicationError(
            f"At most {limit:,} {key} per request; this one has {len(data):,}.",
            code="too_many",
            fields={key: [f"At most {limit} per request."]},
        )
    return data
