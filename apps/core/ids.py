"""The id rule for a store's items, shoppers, sessions and orders, shared by every entry point
(API paths and bodies, bulk endpoints, imports, the dashboard).

An id is 1 to 128 characters of printable Unicode after NFC normalisation: no control
characters (NUL included), no line breaks, no leading or trailing whitespace. Anything else is
allowed, `/`, `:`, `?`, `%` and `#` included (Shopify's `gid://shopify/Product/123`), so URLs
carry ids percent-encoded and the `id` path converter captures them whole.

Writes store the NFC form. Reads and deletes look up the NFC form too, but refuse only what
can never have been stored (NUL, empty, longer than 128), so ids stored before the rule stay
reachable; `manage.py ids_report` lists those.
"""

from __future__ import annotations

import os
import unicodedata
from typing import Any

from apps.core.errors import ApplicationError

ID_MAX_LENGTH = 128


def id_normalize(value: str) -> str:
    """The NFC form (ASCII is already NFC: the common case costs one check)."""
    return value if value.isascii() else unicodedata.normalize("NFC", value)


def id_problem(value: Any, *, max_length: int = ID_MAX_LENGTH) -> str | None:
    """Why `value` (already normalised) breaks the id rule, or None."""
    if type(value) is not str:
        return "Must be a string."
    if not value or value.isspace():
        return "Must not be blank."
    if "\x00" in value:
        return "Must not contain NUL characters."
    if not value.isprintable():
        return "Must contain printable characters only (no control characters or line breaks)."
    if value[0] == " " or value[-1] == " ":
        return "Must not start or end with whitespace."
    if len(value) > max_length:
        return f"At most {max_length} characters."
    return None


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(f"Invalid input in: {field}.", fields={field: [message]})


def id_clean(value: Any, *, field: str, max_length: int = ID_MAX_LENGTH) -> str:
    """The normalised id to store. Raises ApplicationError (400 naming `field`)."""
    if type(value) is str:
        value = id_normalize(value)
    if message := id_problem(value, max_length=max_length):
        raise _invalid(field, message)
    return value


def id_lookup(value: Any, *, field: str) -> str:
    """The id to look up (a path parameter of a read or delete). Refuses with 400 naming
    `field` only what no stored id can be: NUL, empty, over 128 characters."""
    if type(value) is not str or not value:
        raise _invalid(field, "Must not be blank.")
    if "\x00" in value:
        raise _invalid(field, "Must not contain NUL characters.")
    value = id_normalize(value)
    if len(value) > ID_MAX_LENGTH:
        raise _invalid(field, f"At most {ID_MAX_LENGTH} characters.")
    return value


class IdConverter:
    """`<id:item_id>`: one id, `/` included (the whole rest of the path, so routes with a
    suffix such as `<id:user_id>/events` must come before the bare one). Line breaks and
    other control characters are captured too, so the view answers 400 naming the field
    rather than the resolver a 404."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


def random_id() -> str:
    """32 random hex characters, for request and recommendation ids: as unique as
    `uuid4().hex` (128 random bits instead of 122), without building a UUID object on the
    serving hot path."""
    return os.urandom(16).hex()
