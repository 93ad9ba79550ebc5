"""WSGI wrappers config/wsgi.py puts around the application, for what Django does not do with
the environ a WSGI server hands it. No Django import: config/wsgi.py applies them.

keep_path_bytes: Django replaces PATH_INFO with its decoded text and re-percent-encodes bytes
that are not UTF-8 ("a\\xffb" becomes "a%FFb"), which is also the text of the id "a%FFb" sent
as "a%25FFb". apps.core.middleware.RequestInputMiddleware reads the bytes kept here to refuse
the first with 400 instead of serving the second.

read_chunked_body: a body sent with `Transfer-Encoding: chunked` reaches the application
without CONTENT_LENGTH (granian passes it so, as PEP 3333 allows), and Django reads a body of
the declared length only: none. Every view then saw an empty body (a PUT stored an item's
defaults). The body is read here, at most one byte past the upload limit, and handed on with
its length, so every reader sees it, and one past the limit refuses it (413) as it refuses a
declared length over the limit.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

PATH_BYTES_KEY = "shelfsense.path_info"
_READ_SIZE = 64 * 1024


def keep_path_bytes(application: Callable[..., Iterable[bytes]]) -> Callable[..., Any]:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # PEP 3333: PATH_INFO holds the decoded bytes as latin-1 text.
        environ[PATH_BYTES_KEY] = environ.get("PATH_INFO", "")
        return application(environ, start_response)

    return wrapped


def read_chunked_body(
    application: Callable[..., Iterable[bytes]], *, body_limit: Callable[[], int | None]
) -> Callable[..., Any]:
    """`application` receiving a chunked body with its CONTENT_LENGTH set. `body_limit()` is
    the upload limit (DATA_UPLOAD_MAX_MEMORY_SIZE; None: none): at most that many bytes and
    one more are read. Any other request passes untouched (one lookup: the hot path of GETs
    has no Transfer-Encoding)."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        encoding = environ.get("HTTP_TRANSFER_ENCODING")
        if (
            encoding is not None
            and "chunked" in encoding.lower()
            and not environ.get("CONTENT_LENGTH")
        ):
            limit = body_limit()
            size = None if limit is None else limit + 1
            body = body_read_at_most(environ["wsgi.input"], size)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return application(environ, start_response)

    return wrapped


def body_read_at_most(stream: Any, size: int | None) -> bytes:
    """Up to `size` bytes of `stream` (all of it for None), however few each read returns."""
    parts: list[bytes] = []
    total = 0
    while size is None or total < size:
        chunk = stream.read(_READ_SIZE if size is None else min(_READ_SIZE, size - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)
