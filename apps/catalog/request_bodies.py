"""Request bodies of the store data API: JSON read with orjson under the upload limit (413
beyond it, 400 when malformed; apps.core.parsers) and the shape of a batch."""

from __future__ import annotations

from typing import Any

from apps.core.errors import ApplicationError
from apps.core.parsers import body_json, body_read


def raw_json_body(request) -> Any:
    """The request body parsed with orjson, without DRF's parser machinery. 413 beyond the
    upload limit whether the client declared the length or not; 400 for malformed JSON. The
    events hot path: nesting is left to orjson's bound (walking 10,000 rows cost half as much
    as parsing them), as the rows' validation reads scalars only."""
    body = body_read(request)
    if not body:
        raise ApplicationError("The request body is empty.", code="parse_error")
    return body_json(body, max_depth=None)


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
