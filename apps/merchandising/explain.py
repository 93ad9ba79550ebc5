"""Reasons (`explain=true`): why each item of a ruled list is there.

The rule that moved an item wins (`pinned`, `boosted_by`), else its source: the top-up is
`popular`; a scenario's candidates are `similar_to` / `bought_together` the page's item,
`buy_again` with the shopper's usual gap, `trending_in_category`, `popular` (a popularity
list). A model's personal list carries the reasons its ranking stored with it (cached with the
list, see ml.explain.ListReasons): the candidate source — `similar_to` / `bought_together` one
of the shopper's recent items, `buy_again`, `popular`, `trending_in_category`, or for the
model's own candidates `similar_to` the recent item they are closest to when one is close
enough, else `personal_taste`; an item the list did not hold came from the popularity top-up.
Lists without stored reasons (cold-start sessions) get the closest recent item computed here
(ml.explain.closest_recent).
"""

from __future__ import annotations

import statistics
from itertools import pairwise
from typing import Any

import numpy as np
from django.db import connection
from django.utils import timezone

from apps.catalog.models import Event
from apps.catalog.recent import recent_from_database
from apps.catalog.sessions import session_recent_from_database
from apps.merchandising import facts as item_facts
from apps.merchandising import sources
from apps.merchandising.ordering import Placed
from ml.explain import TYPE_OF_CODE, closest_recent

RECENT_ITEMS = 5
DAY = 86400.0


def _recent_items(user_id: str, session_id: str) -> list[str]:
    """The shopper's (or session's) last RECENT_ITEMS distinct items, most recent last."""
    if session_id:
        events = session_recent_from_database(session_id, 0.0)
    elif user_id:
        events = recent_from_database(user_id, 0.0)
    else:
        return []
    distinct: list[str] = []
    for event in reversed(events):  # newest first
        if event[0] not in distinct:
            distinct.append(event[0])
        if len(distinct) >= RECENT_ITEMS:
            break
    return list(reversed(distinct))


def _similar_to(items: list[str], user_id: str, session_id: str) -> list[str | None]:
    """For each item, the recent item it is closest to, or None."""
    out: list[str | None] = [None] * len(items)
    recent = _recent_items(user_id, session_id)
    if not items or not recent:
        return out
    schema = connection.schema_name
    loaded = sources.loaded_model(schema, sources.serving_arm(schema, user_id))
    if loaded is None:
        return out
    model = loaded.model
    if model.item_unit is not None:
        vectors = model.item_unit
    elif model.has_content:
        vectors = model.arrays["content"]
    else:
        return out
    index = model.item_index
    positions, _ = closest_recent(
        vectors,
        np.array([index.get(i) if index.get(i) is not None else -1 for i in items]),
        np.array([index.get(i) if index.get(i) is not None else -1 for i in recent]),
    )
    for n, pos in enumerate(positions.tolist()):
        if pos >= 0:
            out[n] = recent[pos]
    return out


def _buy_again_gaps(user_id: str, items: list[str]) -> dict[str, dict[str, Any]]:
    """Per item: the shopper's usual gap between purchases (median, days; any event type
    when the item has fewer than two purchases) and the days since the last one."""
    rows = (
        Event.objects.filter(user_id=user_id, item_id__in=items)
        .order_by("timestamp")
        .values_list("item_id", "type", "timestamp")
    )
    times: dict[str, dict[str, list[float]]] = {}
    for item, kind, moment in rows.iterator(chunk_size=2000):
        per = times.setdefault(item, {"purchase": [], "any": []})
        per["any"].append(moment.timestamp())
        if kind == Event.Type.PURCHASE:
            per["purchase"].append(moment.timestamp())
    now = timezone.now().timestamp()
    out = {}
    for item, per in times.items():
        stamps = per["purchase"] if len(per["purchase"]) >= 2 else per["any"]
        gaps = [(b - a) / DAY for a, b in pairwise(stamps)]
        out[item] = {
            "usual_gap_days": round(statistics.median(gaps), 1) if gaps else None,
            "days_since_last": round((now - stamps[-1]) / DAY, 1) if stamps else None,
        }
    return out


def _decoded(stored: list, facts: dict) -> dict[str, Any]:
    """A stored reason (ml.explain.ListReasons.encoded) as the API's reason object."""
    kind = TYPE_OF_CODE[stored[0]]
    if kind in ("similar_to", "bought_together"):
        return {"type": kind, "item_id": stored[1]}
    if kind == "buy_again":
        return {"type": kind, "usual_gap_days": stored[1] if len(stored) > 1 else None}
    if kind == "trending_in_category":
        return {"type": kind, "category": facts.get("category")}
    return {"type": kind}


def _from_stored(items: list[str], stored: dict[str, list]) -> dict[str, dict[str, Any]]:
    trending = [
        i for i in items if i in stored and TYPE_OF_CODE[stored[i][0]] == "trending_in_category"
    ]
    facts = item_facts.store_facts().lookup(trending) if trending else {}
    out: dict[str, dict[str, Any]] = {}
    for i in items:
        if i not in stored:
            out[i] = {"type": "popular"}  # the serving top-up, not the ranked list
            continue
        fact = facts.get(i)
        out[i] = _decoded(stored[i], {"category": fact.primary_category if fact else None})
    return out


def reasons(
    placed: list[Placed],
    *,
    scenario: str,
    strategy: str,
    user_id: str = "",
    item_id: str = "",
    session_id: str = "",
    stored: dict[str, list] | None = None,
) -> list[dict[str, Any]]:
    """One reason per item of `placed` (see the module docstring). `stored`: the reasons the
    served list was cached with (Served.stored_reasons), by item id."""
    sources_needed = [p.item_id for p in placed if p.origin == "candidate"]
    source: dict[str, dict[str, Any]] = {}
    if stored:
        source = _from_stored(sources_needed, stored)
    elif scenario == "similar":
        source = {i: {"type": "similar_to", "item_id": item_id} for i in sources_needed}
    elif scenario == "bought-together":
        source = {i: {"type": "bought_together", "item_id": item_id} for i in sources_needed}
    elif scenario == "buy-again":
        gaps = _buy_again_gaps(user_id, sources_needed) if sources_needed else {}
        source = {
            i: {"type": "buy_again", **gaps.get(i, {"usual_gap_days": None})}
            for i in sources_needed
        }
    elif scenario == "trending" or strategy == "trending":
        facts = item_facts.store_facts().lookup(sources_needed)
        source = {
            i: {
                "type": "trending_in_category",
                "category": facts[i].primary_category if i in facts else None,
            }
            for i in sources_needed
        }
    elif strategy in ("popularity", "popular"):
        source = {i: {"type": "popular"} for i in sources_needed}
    else:
        closest = _similar_to(sources_needed, user_id, session_id)
        source = {
            i: {"type": "similar_to", "item_id": near}
            if near is not None
            else {"type": "personal_taste"}
            for i, near in zip(sources_needed, closest, strict=True)
        }
    out = []
    for p in placed:
        if p.origin == "pin":
            out.append({"type": "pinned", "position": p.position})
        elif p.origin == "fallback":
            out.append({"type": "popular"})
        elif p.boost > 1.0:
            out.append(
                {
                    "type": "boosted_by",
                    "rules": list(p.boosted_by),
                    "weight": round(p.boost, 6),
                    "source": source[p.item_id],
                }
            )
        else:
            out.append(source[p.item_id])
    return out


def reason_text(reason: dict[str, Any] | None) -> str:
    """A reason in words, for the dashboard."""
    if not reason:
        return ""
    kind = reason.get("type")
    if kind == "similar_to":
        return f"similar to {reason['item_id']}"
    if kind == "bought_together":
        return f"bought together with {reason['item_id']}"
    if kind == "buy_again":
        gap = reason.get("usual_gap_days")
        return f"buy again (usually every {gap} days)" if gap is not None else "buy again"
    if kind == "trending_in_category":
        category = reason.get("category")
        return f"trending in {category}" if category else "trending"
    if kind == "pinned":
        return f"pinned at position {reason['position']}"
    if kind == "boosted_by":
        return f"boosted by {', '.join(reason['rules'])} (x{reason['weight']:g}); " + reason_text(
            reason["source"]
        )
    if kind == "personal_taste":
        return "matches their taste"
    return "popular"
