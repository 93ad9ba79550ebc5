"""An anonymous visitor's list: recommended from the events of their browsing session
(`session_id` on events), read from the session's Redis list (`apps.catalog.recent`), or
PostgreSQL when Redis is down.

The model folds a vector in from the session's events alone (`recommend_fresh` with a user id
no shopper can have: ids never contain NUL), falling back to its session / trending list when
the events name no item it knows; topped up with trending. With `exclude_seen`, items of the
store's seen event types in the session are left out. Served lists are logged like the others
(surface `session`) with their session: attribution counts a click or purchase carrying the
list's `recommendation_id` only when it comes from that same session.
"""

from __future__ import annotations

from django.db import connection

from apps.catalog.recent import RECENT_EVENTS_MAX, recent_from_reply, session_recent_key
from apps.catalog.sessions import session_recent_from_database
from apps.recommendations import cache as rcache
from apps.recommendations.serving.fallbacks import db_list
from apps.recommendations.serving.fresh import seen_types
from apps.recommendations.serving.results import Filters, Served, _filtered, _log, _new_id
from apps.recommendations.serving.state import (
    LIST_SIZE,
    Arm,
    _tokens,
    catalog_state,
    serving_model,
    store_state,
)

# Prefix of the user id the model sees for a session: a shopper id never contains NUL.
SESSION_USER_PREFIX = "\x00session:"

_MISSING = object()


def _session_events(schema: str, session_id: str) -> list:
    key = session_recent_key(session_id, schema_name=schema)
    reply = rcache.redis_call(lambda r: r.lrange(key, -RECENT_EVENTS_MAX, -1), _MISSING)
    if reply is _MISSING:
        return session_recent_from_database(session_id, 0.0)
    return recent_from_reply(reply, 0.0)


def recommend_for_session(
    *, session_id: str, filters: Filters, exclude_seen: bool = True, log: bool = True
) -> Served:
    """Top `filters.k` for the visitor of `session_id` in the current store. Never raises for
    an unknown session (trending then)."""
    schema = connection.schema_name
    state_token, catalog_token = _tokens(schema)
    arm = store_state(schema, state_token).default
    catalog = catalog_state(schema, catalog_token)
    loaded = serving_model(schema, arm)
    events = _session_events(schema, session_id)
    types = seen_types(loaded)
    exclude = {event[0] for event in events if event[1] in types} if exclude_seen else set()
    if loaded is not None:
        recs = loaded.model.recommend_fresh(
            SESSION_USER_PREFIX + session_id,
            [(item, kind, ts, value) for item, kind, ts, _id, value in events],
            k=LIST_SIZE,
            exclude_seen=False,
            exclude_item_ids=exclude,
        )
        strategy = recs.strategy
        lists = [list(recs.items), loaded.order("trending")]
    else:
        arm = Arm(None, None, "")
        strategy = "trending"
        lists = [db_list(schema, "trending"), db_list(schema, "popular")]
    served = Served(_new_id(), arm.label, strategy, _filtered(lists, catalog, filters, exclude))
    if log:
        _log(schema, served, "session", "", arm, session_id=session_id)
    return served
