"""A small store shaped for tests that train for real: 30 items in three categories and 50
shoppers who each mostly like one category, so a model has something to find beyond
popularity. Used by the browser test and the system test through the public API."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

ITEMS, USERS, CLUSTERS = 30, 50, 3
CATEGORIES = ("books", "garden", "kitchen")


def item_price(item_id: str) -> Decimal:
    return Decimal(f"{5 + int(item_id[1:])}.50")


def clustered_catalog() -> list[dict]:
    """Items i01..i30; item n is in category n % 3."""
    return [
        {
            "item_id": f"i{n:02d}",
            "title": f"{CATEGORIES[n % CLUSTERS].title()} item {n:02d}",
            "categories": [CATEGORIES[n % CLUSTERS]],
            "price": str(item_price(f"i{n:02d}")),
            "in_stock": True,
        }
        for n in range(1, ITEMS + 1)
    ]


def clustered_history(*, seed: int | str, event_prefix: str) -> list[dict]:
    """~600 events (12 a shopper) over the last 20 days, ending 5 minutes ago: shopper n's
    events go 85% to the items of category n % 3. None carries a recommendation_id."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    by_cluster = {c: [n for n in range(1, ITEMS + 1) if n % CLUSTERS == c] for c in range(3)}
    rows = []
    for user in range(1, USERS + 1):
        liked = by_cluster[user % CLUSTERS]
        for k in range(12):
            item = rng.choice(liked) if rng.random() < 0.85 else rng.randint(1, ITEMS)
            kind = rng.choices(["view", "add_to_cart", "purchase"], [6, 2, 1])[0]
            stamp = now - timedelta(days=20) + timedelta(hours=user * 3 + k * 30)
            rows.append(
                {
                    "event_id": f"{event_prefix}-{user}-{k}",
                    "user_id": f"u{user:02d}",
                    "item_id": f"i{item:02d}",
                    "type": kind,
                    "timestamp": min(stamp, now - timedelta(minutes=5)).isoformat(),
                }
            )
    return rows
