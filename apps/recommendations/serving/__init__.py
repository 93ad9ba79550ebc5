"""The request path of the recommendation endpoints (reads only; the cache fills are a side
effect of reading).

A shopper's list is one Redis round trip (an MGET of the store's state token, its catalog
token, the precomputed top-100 of the version serving the shopper and its re-scored list; the
shopper's tombstone; their newest-event marker: a list re-scored only when some event arrived
after the version's training, and served from its cache without reading the events while the
marker has not moved, see `fresh`) plus filtering in memory against the
store's hidden / out-of-stock items and categories, which each process keeps per store and
reloads when the catalog token moves. The active version and running experiment are kept per
process too, reloaded when the state token moves (activation, rollback, experiment start or
stop) or after STATE_TTL_SECONDS.

A cache miss computes the list from the model (loaded once per process per store, bounded LRU)
and fills the cache. Redis down: the model answers directly. No model or an unreadable
artifact: popularity / trending from PostgreSQL. Degraded, never an error.

One module per subject: `state` (per-process store state and the Redis tokens), `results`
(`Served`, `Filters`, filtering, impression logging), `fallbacks` (lists from PostgreSQL),
`shopper` (a shopper's lists, buy again), `fresh` (a list re-scored with the shopper's events
since training) and `items` (similar, bought together, trending). The
public names are re-exported here: callers write `from apps.recommendations import serving`.
"""

from apps.recommendations.serving.items import recommend_for_item, recommend_trending
from apps.recommendations.serving.results import Filters, Served
from apps.recommendations.serving.shopper import (
    ShopperPrefetch,
    recommend_buy_again,
    recommend_for_shopper,
    shopper_prefetch,
)
from apps.recommendations.serving.state import (
    ERASED_SHOPPER,
    LIST_SIZE,
    NO_MODEL,
    Arm,
    experiment_bucket,
    forget_all,
    forget_catalog,
    forget_store,
)

__all__ = [
    "ERASED_SHOPPER",
    "LIST_SIZE",
    "NO_MODEL",
    "Arm",
    "Filters",
    "Served",
    "ShopperPrefetch",
    "experiment_bucket",
    "forget_all",
    "forget_catalog",
    "forget_store",
    "recommend_buy_again",
    "recommend_for_item",
    "recommend_for_shopper",
    "recommend_trending",
    "shopper_prefetch",
]
