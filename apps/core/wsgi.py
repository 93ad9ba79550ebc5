"""WSGI wrapper: keep the request path's bytes as the server received them.

Django replaces PATH_INFO with its decoded text and re-percent-encodes bytes that are not
UTF-8 ("a\\xffb" becomes "a%FFb"), which is also the text of the id "a%FFb" sent as
"a%25FFb". apps.core.middleware.RequestInputMiddleware reads the bytes kept here to refuse
the first with 400 instead of serving the second. No Django import: config/wsgi.py applies it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

PATH_BYTES_KEY = "shelfsense.path_info"


def keep_path_bytes(application: Callable[..., Iterable[bytes]]) -> Callable[..., Any]:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # PEP 3333: PATH_INFO holds the decoded bytes as latin-1 text.
        environ[PATH_BYTES_KEY] = environ.get("PATH_INFO", "")
        return application(environ, start_response)

    return wrapped
