"""What merchandising reads from the recommendations app's serving state: the arm serving a
shopper, its loaded model, and the popularity order used for top-ups.

The serving package keeps these per process (reloaded when the store's Redis tokens move);
reading them here, rather than loading a second copy, keeps a placement as cheap as the list
it rules. These are the serving package's internal helpers: this module is the one place
merchandising touches them, so a rename there is a one-file change here.
"""

from __future__ import annotations

from apps.catalog.sessions import session_recent_from_database
from apps.recommendations.model_store import LoadedModel
from apps.recommendations.serving.fallbacks import db_list, db_seen
from apps.recommendations.serving.state import Arm, serving_model, store_state


def serving_arm(schema_name: str, user_id: str = "") -> Arm:
    """The arm serving `user_id` (the store's default arm for lists that are not a
    shopper's)."""
    state = store_state(schema_name)
    return state.arm_for(user_id) if user_id else state.default


def loaded_model(schema_name: str, arm: Arm) -> LoadedModel | None:
    return serving_model(schema_name, arm)


def popular_items(schema_name: str) -> list[tuple[str, float]]:
    """The store's popularity order: the active model's (every item with events), else the
    90-day list from PostgreSQL."""
    loaded = serving_model(schema_name, store_state(schema_name).default)
    return loaded.order("popular") if loaded is not None else db_list(schema_name, "popular")


def seen_items(*, user_id: str = "", session_id: str = "") -> set[str]:
    """Items of the shopper's (latest 1,000) or the session's events: the top-up leaves them
    out where the endpoint leaves seen items out."""
    if user_id:
        return db_seen(user_id)
    if session_id:
        return {event[0] for event in session_recent_from_database(session_id, 0.0)}
    return set()
