"""Input data containers and the weighted shopper x item matrix.

Everything downstream works on integer indices: rows are shoppers, columns are items. This module
owns the mapping between the store's string ids and those indices, and the aggregation of raw
events into per (shopper, item) statistics.
"""

from ml.data.catalog import Catalog
from ml.data.export import interactions_export, interactions_import
from ml.data.index import IdIndex, build_index, lookup_coded
from ml.data.matrix import (
    EventWeights,
    UserItemTable,
    build_interaction_matrix,
    build_seen_cells,
    build_user_item_table,
    event_weights_array,
    time_decay,
)
from ml.data.records import DAY, EVENT_TYPES, Interactions, factorize

__all__ = [
    "DAY",
    "EVENT_TYPES",
    "Catalog",
    "EventWeights",
    "IdIndex",
    "Interactions",
    "UserItemTable",
    "build_index",
    "build_interaction_matrix",
    "build_seen_cells",
    "build_user_item_table",
    "event_weights_array",
    "factorize",
    "interactions_export",
    "interactions_import",
    "lookup_coded",
    "time_decay",
]
