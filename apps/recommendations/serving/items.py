"""Lists that are not a shopper's: similar and bought-together items of a catalog item, and
trending items."""

from __future__ import annotations

from django.db import connection

from apps.catalog.models import Item
from apps.core.errors import ApplicationError
from apps.recommendations.serving.fallbacks import db_list
from apps.recommendations.serving.results import Filters, Served, _filtered, _log, _new_id
from apps.recommendations.serving.state import (
    LIST_SIZE,
    Arm,
    _category_items,
    _tokens,
    catalog_state,
    serving_model,
    store_state,
)


def _item_or_404(item_id: str) -> list[str]:
    categories = (
        Item.objects.filter(item_id=item_id, is_hidden=False)
        .values_list("categories", flat=True)
        .first()
    )
    if categories is None:
        raise ApplicationError(
            f"No item {item_id!r} in this store's catalog.", code="not_found", status_code=404
        )
    return categories


def recommend_for_item(*, item_id: str, kind: str, filters: Filters, log: bool = True) -> Served:
    """`similar` or `bought_together` items of a catalog item; topped up with popular items
    of the same categories. Raises ApplicationError 404 for an item not in the catalog."""
    schema = connection.schema_name
    categories = _item_or_404(item_id)
    state_token, catalog_token = _tokens(schema)
    arm = store_state(schema, state_token).default
    catalog = catalog_state(schema, catalog_token)
    loaded = serving_model(schema, arm)
    items: list[tuple[str, float]] = []
    strategy = "category"
    if loaded is not None:
        recs = (
            loaded.model.similar_items(item_id, LIST_SIZE)
            if kind == "similar"
            else loaded.model.bought_together(item_id, LIST_SIZE)
        )
        if recs.items:
            items, strategy = list(recs.items), recs.strategy
        popular = loaded.order("popular")
    else:
        arm = Arm(None, None, "")
        popular = db_list(schema, "popular")
    lists = [items]
    if categories:
        same: set[str] = set()
        for category in categories[:5]:
            same |= _category_items(catalog, category)
        lists.append([(item, score) for item, score in popular if item in same])
    result = _filtered(lists, catalog, filters, {item_id})
    if not items and result:
        strategy = "category"
    served = Served(_new_id(), arm.label, strategy, result)
    if log:
        _log(schema, served, kind, "", arm)
    return served


def recommend_trending(*, filters: Filters, log: bool = True) -> Served:
    """Items by recent, time-decayed popularity; topped up with all-time popularity."""
    schema = connection.schema_name
    state_token, catalog_token = _tokens(schema)
    arm = store_state(schema, state_token).default
    catalog = catalog_state(schema, catalog_token)
    loaded = serving_model(schema, arm)
    if loaded is not None:
        lists = [loaded.order("trending"), loaded.order("popular")]
    else:
        arm = Arm(None, None, "")
        lists = [db_list(schema, "trending"), db_list(schema, "popular")]
    served = Served(_new_id(), arm.label, "trending", _filtered(lists, catalog, filters))
    if log:
        _log(schema, served, "trending", "", arm)
    return served
