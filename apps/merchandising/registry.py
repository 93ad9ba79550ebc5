"""The placements of each store, compiled, kept per web process.

Each process keeps a store's placements (compiled rules) in memory and checks them against the
store's Redis version key (`merch:placements`, bumped after every change) on each request that
names a placement (the read shares the request's MGET: placing.prefetch). So a change takes
effect on the next request of every process; with Redis down, within PLACEMENTS_TTL_SECONDS.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from django.db import connection

from apps.core.cache import tenant_key
from apps.core.errors import ApplicationError
from apps.merchandising import facts as item_facts
from apps.merchandising.models import Placement
from apps.merchandising.rules import Rules
from apps.merchandising.rules_json import parse_rules
from apps.recommendations import cache as rcache

PLACEMENTS_TTL_SECONDS = 10.0
MAX_STORES = 512
SCENARIOS = tuple(Placement.Scenario.values)
_UNSET = object()


@dataclass(frozen=True)
class Compiled:
    """A placement ready to apply."""

    name: str
    scenario: str
    rules: Rules


@dataclass
class _StorePlacements:
    token: object
    expires: float
    by_name: dict[str, Compiled]


_stores: OrderedDict[str, _StorePlacements] = OrderedDict()
_lock = threading.Lock()


def placements_key(schema_name: str) -> str:
    return tenant_key("merch", "placements", schema_name=schema_name)


def placements_changed(schema_name: str | None = None) -> None:
    """After commit of a placement change: this process forgets the store's placements now,
    the others on their next request (the version key moved)."""
    schema = schema_name or connection.schema_name
    with _lock:
        _stores.pop(schema, None)
    rcache.redis_call(lambda r: r.incr(placements_key(schema)), None)


def forget_all() -> None:
    with _lock:
        _stores.clear()
    item_facts.forget()


def _load(schema: str, token: object) -> _StorePlacements:
    by_name = {
        name: Compiled(name, scenario, parse_rules(rules))
        for name, scenario, rules in Placement.objects.values_list("name", "scenario", "rules")
    }
    loaded = _StorePlacements(token, time.monotonic() + PLACEMENTS_TTL_SECONDS, by_name)
    with _lock:
        _stores[schema] = loaded
        _stores.move_to_end(schema)
        while len(_stores) > MAX_STORES:
            _stores.popitem(last=False)
    return loaded


def _placements(schema: str, token: object = _UNSET) -> dict[str, Compiled]:
    cached = _stores.get(schema)
    now = time.monotonic()
    if cached is not None:
        if token is _UNSET and cached.expires > now:
            return cached.by_name
        if token is not _UNSET and token == cached.token:
            return cached.by_name
    return _load(schema, None if token is _UNSET else token).by_name


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(f"Invalid input in: {field}.", fields={field: [message]})


def placement_get(*, name: str, scenario: str | None, token: object = _UNSET) -> Compiled:
    """The current store's placement `name`. Raises ApplicationError 400 naming `placement`
    when there is none, or when its scenario is not `scenario` (None: any scenario)."""
    compiled = _placements(connection.schema_name, token).get(name)
    if compiled is None:
        raise _invalid("placement", f"No placement {name!r} in this store.")
    if scenario is not None and compiled.scenario != scenario:
        raise _invalid(
            "placement",
            f"Placement {name!r} is for the {compiled.scenario!r} scenario, not {scenario!r}.",
        )
    return compiled
