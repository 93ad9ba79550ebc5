"""Facts about a store that other apps show on the operators' store page (Django admin).

Tenancy is the floor: it cannot import billing, users or recommendations. Those apps register
a fact here from their own `admin.py` (plan and usage, members, models) and the store page
lists whatever is registered, in registration order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from apps.tenants.models import Tenant


@dataclass(frozen=True)
class StoreFact:
    label: str
    read: Callable[[Tenant], str]


_FACTS: dict[str, StoreFact] = {}


def store_fact_register(label: str, read: Callable[[Tenant], str]) -> None:
    """`read(tenant)` returns plain text (escaped when shown); registering a label again
    replaces it."""
    _FACTS[label] = StoreFact(label, read)


def store_facts(tenant: Tenant) -> list[tuple[str, str]]:
    """(label, text) of every registered fact; one that fails reads "unavailable" rather than
    breaking the operators' page."""
    rows = []
    for fact in _FACTS.values():
        try:
            rows.append((fact.label, fact.read(tenant)))
        except Exception as exc:  # a fact is informative; the page must still open
            rows.append((fact.label, f"unavailable ({type(exc).__name__})"))
    return rows
