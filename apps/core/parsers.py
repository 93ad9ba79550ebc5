"""JSON from clients: the API's one body parser (DRF's default parser, config/settings/base.py),
the errors every reader of a JSON body answers with, and `json_parse` for JSON typed in a
form.

orjson parses. It refuses nesting deeper than 1,024 levels, where the standard library's json
(DRF's JSONParser) recursed until RecursionError: a 500 on a 5,000-deep body. Code after the
parser recurses too (DRF's JSONField and the audit trail re-encode with the standard library,
which gives up near 1,000 levels), so parsed JSON nested deeper than MAX_DEPTH is refused as
well. The body is read up to DATA_UPLOAD_MAX_MEMORY_SIZE: DRF hands its JSONParser
`request.body`, whose RequestDataTooBig became Django's HTML 400, and any other parser the
stream, where nothing checks the limit. The refusals are the JSON error body: 413 `too_large`,
400 `parse_error` naming `body`.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework.parsers import BaseParser

# The module, not the name: DRF's settings import this parser while apps.core.errors (which
# imports DRF's views) may still be loading.
from apps.core import errors

# Deeper than anything the API or a form takes (rules, attributes: a handful of levels), and
# shallow enough for every recursive reader after the parser to stay far from Python's limit.
MAX_DEPTH = 64
NOT_JSON = "Not valid JSON."
TOO_DEEP = f"Nested deeper than {MAX_DEPTH} levels."
_CONTAINERS = (dict, list)


class JsonRefused(ValueError):
    """Text that is not JSON (`problem` NOT_JSON) or nests too deeply (TOO_DEEP); `reason`
    the parser's details."""

    def __init__(self, reason: str, problem: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.problem = problem


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects in `value` nest more than `limit` levels deep. Level by
    level, without recursion: the point is not to recurse as deep as a client nests."""
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [
            child
            for node in level
            for child in (node.values() if type(node) is dict else node)
            if type(child) in _CONTAINERS
        ]
    return False


def json_parse(data: bytes | str, *, max_depth: int | None = MAX_DEPTH) -> Any:
    """`data` parsed by orjson. Raises JsonRefused when it is not JSON or nests deeper than
    `max_depth` levels (None: orjson's own bound, 1,024)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        too_deep = "depth limit" in str(exc) or "ecursion limit" in str(exc)
        raise JsonRefused(str(exc), TOO_DEEP if too_deep else NOT_JSON) from None
    if max_depth is not None and nested_deeper_than(value, max_depth):
        raise JsonRefused(f"nested deeper than {max_depth} levels", TOO_DEEP)
    return value


def body_json(body: bytes, *, max_depth: int | None = MAX_DEPTH) -> Any:
    """A request body parsed (json_parse); 400 `parse_error` naming `body` when refused."""
    try:
        return json_parse(body, max_depth=max_depth)
    except JsonRefused as exc:
        raise errors.ApplicationError(
            f"Malformed JSON: {exc.reason}", code="parse_error", fields={"body": [exc.problem]}
        ) from None


def body_too_large() -> errors.ApplicationError:
    """413: the body is over DATA_UPLOAD_MAX_MEMORY_SIZE."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    megabytes, rest = divmod(limit, 1024 * 1024)
    size = f"{megabytes} MB" if megabytes and not rest else f"{limit:,} bytes"
    return errors.ApplicationError(
        f"The request body is larger than {size}.", code="too_large", status_code=413
    )


def declared_length(request) -> int:
    """The Content-Length header as a number (0 when absent); 400 when it is not one."""
    raw = request.META.get("CONTENT_LENGTH") or "0"
    try:
        return int(raw)
    except ValueError:
        raise errors.ApplicationError(
            "Invalid Content-Length header.", code="bad_request"
        ) from None


def body_read(request, stream=None) -> bytes:
    """The body of `request` read from `stream` (DRF's parser stream), else `request.body`;
    413 beyond the upload limit whether the client declared the length or not (apps.core.wsgi
    sets a chunked body's length, past the limit when the body is)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and declared_length(request) > limit:
        raise body_too_large()
    try:
        if stream is None:
            body = request.body
        else:
            body = stream.read() if limit is None else stream.read(limit + 1)
    except RequestDataTooBig:
        raise body_too_large() from None
    if limit is not None and len(body) > limit:
        raise body_too_large()
    return body


class JsonParser(BaseParser):
    """application/json bodies: read up to the upload limit, parsed by orjson, nesting
    bounded by MAX_DEPTH (see the module docstring)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        return body_json(body_read(parser_context["request"], stream))
