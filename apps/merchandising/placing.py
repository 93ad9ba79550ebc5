"""Placements on the serving path: applying a placement's and a request's rules to the list a
recommendation endpoint computed, the rotation state, the impression, and previews.

Requests without placement or rule parameters never come here (`wants_rules`): they take the
serving path unchanged. The placements themselves are kept per process by `registry`; the
request's parameters are parsed by `query`. The names other apps use are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace

import orjson
import redis
from django.db import connection
from django.http import HttpRequest

from apps.core.cache import tenant_key
from apps.core.errors import ApplicationError
from apps.core.ids import id_lookup
from apps.core.redis_batch import request_batch
from apps.merchandising import explain as explaining
from apps.merchandising import facts as item_facts
from apps.merchandising import sources
from apps.merchandising.ordering import Placed, apply
from apps.merchandising.query import Plan, plan_from_query, wants_rules
from apps.merchandising.registry import (
    SCENARIOS,
    Compiled,
    forget_all,
    placement_get,
    placements_changed,
    placements_key,
)
from apps.merchandising.rules import NO_RULES, Rules, combined
from apps.recommendations import cache as rcache
from apps.recommendations import serving
from apps.recommendations.impressions import impression_log
from apps.recommendations.serving import LIST_SIZE, NO_MODEL, Filters, Served
from apps.recommendations.serving.session import recommend_for_session

__all__ = [
    "SCENARIOS",
    "Compiled",
    "Plan",
    "Ruled",
    "explained_list",
    "facts_preload",
    "forget_all",
    "placement_apply",
    "placement_get",
    "placements_changed",
    "placements_key",
    "plan_from_query",
    "prefetch",
    "rotation_key",
    "serve",
    "serve_json",
    "wants_rules",
]

# The impression surface of each scenario (what the endpoints log without a placement).
SURFACE = {
    "personal": "user",
    "session": "session",
    "similar": "similar",
    "bought-together": "bought_together",
    "buy-again": "buy_again",
    "trending": "trending",
}
_UNSET = object()

Recommend = Callable[[Filters, bool], Served]


def rotation_key(schema_name: str, placement: str, subject: str) -> str:
    """The list last shown on `placement` to `subject` (`u:<user id>` or `s:<session id>`)."""
    return tenant_key("merch", "shown", placement, subject, schema_name=schema_name)


# --- applying ------------------------------------------------------------------------------------
@dataclass
class Ruled:
    """What `placement_apply` returns: at most k (item id, score), and each item's reason
    when explanations were asked for."""

    items: list[tuple[str, float]]
    reasons: list[dict] | None


def _popular_lazy(
    schema: str, skip: Callable[[], set[str]] | None = None
) -> Iterator[tuple[str, float]]:
    """The popularity order, read only if the top-up needs it; `skip()` (read on first use)
    names items to leave out (the shopper's seen items)."""
    left_out: set[str] | None = None
    for item, score in sources.popular_items(schema):
        if skip is not None:
            if left_out is None:
                left_out = skip()
            if item in left_out:
                continue
        yield item, score


def _apply(
    rules: Rules,
    candidates: list[tuple[str, float]],
    *,
    k: int,
    in_stock: bool,
    catalog_token: object = _UNSET,
    last_shown: list[str] | None = None,
    skip: Callable[[], set[str]] | None = None,
) -> list[Placed]:
    schema = connection.schema_name
    facts = item_facts.store_facts(catalog_token, schema)
    return apply(
        rules,
        candidates,
        k=k,
        facts=facts.lookup,
        fallback=_popular_lazy(schema, skip),
        in_stock=in_stock,
        last_shown=last_shown,
        verdicts=facts.verdicts(rules, in_stock),
    )


def placement_apply(
    *,
    placement: Compiled | None,
    candidates: list[tuple[str, float]],
    k: int,
    request_rules: Rules | None = None,
    in_stock: bool = True,
) -> Ruled:
    """Apply `placement`'s rules (narrowed by `request_rules`) to one ranked candidate list
    of the current store (batch jobs: no rotation state, no explanations). Items that are
    not in the store's catalog or are hidden are never returned."""
    rules = placement.rules if placement is not None else NO_RULES
    if request_rules is not None:
        rules = combined(rules, request_rules)
    placed = _apply(rules, candidates, k=k, in_stock=in_stock)
    return Ruled([(p.item_id, p.score) for p in placed], None)


def facts_preload() -> None:
    """Load the facts of every item of the current store into this process (batch jobs)."""
    item_facts.store_facts(schema_name=connection.schema_name).preload()


def _subject(scenario: str, user_id: str, session_id: str, viewer: str) -> str:
    if scenario in ("personal", "buy-again") and user_id:
        return f"u:{user_id}"
    if scenario == "session" and session_id:
        return f"s:{session_id}"
    return f"u:{viewer}" if viewer else ""


def _keys(schema: str, placement: str | None, subject: str) -> list[str]:
    keys = [placements_key(schema), rcache.catalog_key(schema)]
    if placement and subject:
        keys.append(rotation_key(schema, placement, subject))
    return keys


_PREFETCH = "_merchandising_prefetch"


def prefetch(request: HttpRequest, path: Mapping[str, str]) -> None:
    """Queue a rule request's Redis read in the request's batch (apps.core.redis_batch)
    before authentication, so it shares the key gate's round trip; `path` holds the view's
    path ids. Requests without rule parameters queue nothing; one whose input is invalid
    queues nothing either (the view answers the 400)."""
    query = request.GET
    if not wants_rules(query) or not rcache.redis_available():
        return
    try:
        if "user_id" in path:
            subject = "u:" + id_lookup(path["user_id"], field="user_id")
        elif "session_id" in path:
            subject = "s:" + id_lookup(path["session_id"], field="session_id")
        else:
            subject = f"u:{query['user_id']}" if query.get("user_id") else ""
    except ApplicationError:
        return
    keys = _keys(connection.schema_name, query.get("placement") or None, subject)
    setattr(request, _PREFETCH, (keys, request_batch(request).add(("MGET", *keys))))


def _round_trip(schema: str, placement: str | None, subject: str, request=None) -> list:
    """[placements token, catalog token, last shown list or None] in one MGET (the one
    `prefetch` queued, when it read the same keys); _UNSET values when Redis does not
    answer."""
    keys = _keys(schema, placement, subject)
    queued = getattr(request, _PREFETCH, None) if request is not None else None
    reply = None
    if queued is not None and queued[0] == keys:
        try:
            reply = queued[1].result()[0]
        except redis.RedisError as exc:
            rcache.redis_failed(exc)
    else:
        reply = rcache.redis_call(lambda r: r.mget(keys), None)
    if reply is None:
        return [_UNSET, _UNSET, None]
    return [reply[0], reply[1], reply[2] if len(reply) > 2 else None]


def _log(schema: str, served: Served, scenario: str, user_id: str, items: list[str]) -> None:
    arm = getattr(served, "arm", None)
    if arm is None:
        arm = sources.serving_arm(schema, user_id if scenario == "personal" else "")
    impression_log(
        schema_name=schema,
        recommendation_id=served.recommendation_id,
        surface=SURFACE[scenario],
        user_id=user_id,
        model_version_number=arm.number if served.model_version != NO_MODEL else None,
        strategy=served.strategy,
        item_ids=items,
        experiment_id=arm.experiment_id,
        arm_id=arm.arm_id,
    )


def serve(
    plan: Plan,
    recommend: Recommend,
    *,
    scenario: str,
    k: int,
    in_stock: bool = True,
    user_id: str = "",
    item_id: str = "",
    session_id: str = "",
    log: bool = True,
    request: HttpRequest | None = None,
) -> dict:
    """The response body of a recommendation endpoint with `plan` applied.

    `recommend(filters, log)` is the endpoint's serving call; it is asked for its whole list
    (LIST_SIZE) unlogged, the rules are applied (ordering.apply), the shopper's shown list is
    remembered when the placement rotates, and the final list is logged as the impression
    (unless `log` is False: previews). Raises ApplicationError 400 naming `placement` for an
    unknown placement or one of another scenario. `request`: the HTTP request whose batch
    holds the `prefetch`ed read."""
    schema = connection.schema_name
    subject = _subject(scenario, user_id, session_id, plan.viewer)
    placements_token, catalog_token, shown = _round_trip(schema, plan.placement, subject, request)
    compiled = None
    rules = plan.rules
    if plan.placement is not None:
        compiled = placement_get(name=plan.placement, scenario=scenario, token=placements_token)
        rules = combined(compiled.rules, plan.rules)
    if item_id:
        # Never the page's own item, not even from the top-up.
        rules = replace(rules, exclude=rules.exclude | {item_id})
    skip = None
    if plan.exclude_seen and scenario in ("personal", "session"):

        def skip() -> set[str]:
            return sources.seen_items(user_id=user_id, session_id=session_id)

    rotating = compiled is not None and compiled.rules.rotation_seconds > 0 and bool(subject)
    last_shown = orjson.loads(shown) if rotating and shown else None

    served = recommend(Filters(k=LIST_SIZE, in_stock=in_stock), False)
    placed = _apply(
        rules,
        served.items,
        k=k,
        in_stock=in_stock,
        catalog_token=catalog_token,
        last_shown=last_shown,
        skip=skip,
    )
    ids = [p.item_id for p in placed]
    if rotating and log:
        key = rotation_key(schema, compiled.name, subject)
        window = compiled.rules.rotation_seconds
        rcache.redis_call(lambda r: r.set(key, orjson.dumps(ids), ex=window), None)
    if log:
        _log(schema, served, scenario, user_id, ids)
    if plan.explain:
        reasons = explaining.reasons(
            placed,
            scenario=scenario,
            strategy=served.strategy,
            user_id=user_id,
            item_id=item_id,
            session_id=session_id,
            stored=served.stored_reasons(),
        )
        items = [
            {"item_id": p.item_id, "score": p.score, "reason": reason}
            for p, reason in zip(placed, reasons, strict=True)
        ]
    else:
        items = [{"item_id": p.item_id, "score": p.score} for p in placed]
    return {
        "recommendation_id": served.recommendation_id,
        "model_version": served.model_version,
        "strategy": served.strategy,
        "placement": plan.placement,
        "items": items,
    }


def serve_json(plan: Plan, recommend: Recommend, **kwargs) -> bytes:
    return orjson.dumps(serve(plan, recommend, **kwargs))


# --- previews ------------------------------------------------------------------------------------
def recommend_for(
    scenario: str, *, user_id: str = "", item_id: str = "", session_id: str = ""
) -> Recommend:
    """The serving call of `scenario`'s endpoint (what the API's views call)."""
    if scenario == "personal":
        return lambda f, log: serving.recommend_for_shopper(user_id=user_id, filters=f, log=log)
    if scenario == "buy-again":
        return lambda f, log: serving.recommend_buy_again(user_id=user_id, filters=f, log=log)
    if scenario == "session":
        return lambda f, log: recommend_for_session(session_id=session_id, filters=f, log=log)
    if scenario in ("similar", "bought-together"):
        kind = "similar" if scenario == "similar" else "bought_together"
        return lambda f, log: serving.recommend_for_item(
            item_id=item_id, kind=kind, filters=f, log=log
        )
    return lambda f, log: serving.recommend_trending(filters=f, log=log)


SUBJECT_FIELD = {
    "personal": "user_id",
    "buy-again": "user_id",
    "session": "session_id",
    "similar": "item_id",
    "bought-together": "item_id",
    "trending": "user_id",
}


def explained_list(
    *, scenario: str, subject: str = "", placement: str | None = None, k: int = 10
) -> dict:
    """The list `scenario`'s endpoint would serve now for `subject` (a shopper, session or
    item id, per SUBJECT_FIELD; for trending an optional shopper, for rotation), through
    `placement` when named, with reasons: the API's body for `explain=true`, never logged
    and without touching the rotation state. Raises ApplicationError (400 naming the field,
    404 for an unknown item)."""
    field = SUBJECT_FIELD[scenario]
    if subject or scenario != "trending":
        subject = id_lookup(subject, field=field)
    ids = {field: subject} if scenario != "trending" else {}
    plan = Plan(
        placement=placement,
        rules=NO_RULES,
        explain=True,
        viewer=subject if scenario == "trending" else "",
    )
    return serve(plan, recommend_for(scenario, **ids), scenario=scenario, k=k, log=False, **ids)
