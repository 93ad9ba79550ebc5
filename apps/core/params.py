"""Query-string parameters shared by the APIs: one parser per kind, one error per bad value."""

from __future__ import annotations

from collections.abc import Mapping

from apps.core.errors import ApplicationError

# The union of the words the store APIs have accepted: clients written against either keep working.
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})


def bool_param(query: Mapping[str, str], name: str, *, default: bool | None = None) -> bool | None:
    """The boolean query parameter `name` of `query` (a QueryDict or any mapping).

    Absent or empty: `default`. Case-insensitive true/1/yes/on and false/0/no/off. Anything
    else raises ApplicationError (400) naming the parameter.
    """
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    value = raw.lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ApplicationError(f"Invalid input in: {name}.", fields={name: ["Must be true or false."]})
