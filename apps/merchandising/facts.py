"""Catalog facts the rules read (categories, price, stock, hidden, attributes), kept per process
and per store, filled lazily for the ids a request needs (one query for the missing ones).

A store's facts are dropped when its catalog token (`apps.recommendations.cache.catalog_key`,
bumped after every item change) moves, when this process hears `items_changed`, or after
FACTS_TTL_SECONDS when Redis does not answer. Ids absent from the catalog are remembered as
absent, so another store's item id or an event stub is looked up once and never served.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from django.db import connection

from apps.catalog.models import Item
from apps.merchandising.ordering import Verdicts
from apps.merchandising.rules import ItemFacts, Rules

FACTS_TTL_SECONDS = 30.0
MAX_STORES = 256
MAX_ITEMS_PER_STORE = 200_000
# Rule sets whose per-item verdicts a store's facts keep (placements, and the few request
# rules in use); past it they are dropped and rebuilt as requests come.
MAX_VERDICT_SETS = 32

_UNSET = object()


class StoreFacts:
    __slots__ = ("expires", "items", "lock", "token", "verdict_sets")

    def __init__(self, token: object) -> None:
        self.token = token
        self.expires = time.monotonic() + FACTS_TTL_SECONDS
        self.items: dict[str, ItemFacts | None] = {}
        self.lock = threading.Lock()
        self.verdict_sets: dict[tuple[Rules, bool], Verdicts] = {}

    def verdicts(self, rules: Rules, in_stock: bool) -> Verdicts:
        """The memo of `rules`' filter and boost verdicts on these facts (ordering.apply):
        items are judged once per catalog version, not once per request."""
        key = (rules, in_stock)
        found = self.verdict_sets.get(key)
        if found is None:
            with self.lock:
                if len(self.verdict_sets) >= MAX_VERDICT_SETS:
                    self.verdict_sets.clear()
                found = self.verdict_sets.setdefault(key, Verdicts())
        return found

    def lookup(self, ids: Sequence[str]) -> dict[str, ItemFacts]:
        """Facts of those `ids` that are catalog items of this store."""
        items = self.items
        missing = [item for item in ids if item not in items]
        if missing:
            self._load(missing)
        out = {}
        for item in ids:
            facts = items.get(item)
            if facts is not None:
                out[item] = facts
        return out

    def _load(self, ids: list[str]) -> None:
        rows = Item.objects.filter(item_id__in=set(ids)).values_list(
            "item_id", "categories", "price", "in_stock", "is_hidden", "attributes"
        )
        loaded: dict[str, ItemFacts | None] = dict.fromkeys(ids)
        for item_id, categories, price, in_stock, hidden, attributes in rows:
            loaded[item_id] = _facts(categories, price, in_stock, hidden, attributes)
        with self.lock:
            if len(self.items) + len(loaded) > MAX_ITEMS_PER_STORE:
                self.items.clear()
            self.items.update(loaded)

    def preload(self) -> None:
        """Every item of the store (batch jobs walking most of the catalog)."""
        rows = Item.objects.values_list(
            "item_id", "categories", "price", "in_stock", "is_hidden", "attributes"
        )
        loaded = {
            item_id: _facts(categories, price, in_stock, hidden, attributes)
            for item_id, categories, price, in_stock, hidden, attributes in rows.iterator(
                chunk_size=10_000
            )
        }
        with self.lock:
            self.items.update(loaded)


def _facts(categories, price, in_stock, hidden, attributes: Any) -> ItemFacts:
    return ItemFacts(
        categories=tuple(categories or ()),
        price=float(price) if price is not None else None,
        in_stock=bool(in_stock),
        hidden=bool(hidden),
        attributes=attributes if isinstance(attributes, dict) else {},
    )


_stores: OrderedDict[str, StoreFacts] = OrderedDict()
_lock = threading.Lock()


def store_facts(token: object = _UNSET, schema_name: str | None = None) -> StoreFacts:
    """The facts of the current (or given) store; `token` is the catalog token read from
    Redis (_UNSET when Redis did not answer: the TTL decides)."""
    schema = schema_name or connection.schema_name
    facts = _stores.get(schema)
    now = time.monotonic()
    if facts is not None:
        if token is _UNSET:
            if facts.expires > now:
                return facts
        elif token == facts.token:
            facts.expires = now + FACTS_TTL_SECONDS
            return facts
    facts = StoreFacts(None if token is _UNSET else token)
    with _lock:
        _stores[schema] = facts
        _stores.move_to_end(schema)
        while len(_stores) > MAX_STORES:
            _stores.popitem(last=False)
    return facts


def forget(schema_name: str | None = None) -> None:
    with _lock:
        if schema_name is None:
            _stores.clear()
        else:
            _stores.pop(schema_name, None)


def on_items_changed(*, schema_name: str, **kwargs: Any) -> None:
    """apps.catalog.signals.items_changed (after commit): this process reloads at once."""
    forget(schema_name)
