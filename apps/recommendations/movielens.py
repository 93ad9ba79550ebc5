"""MovieLens-100K into the current store's schema, through the catalog ingestion services the
API uses: the demo store (`manage.py seed_demo`) and the recommendation tests load it the same way.

The data is read offline out of the recbole wheel (ml.datasets.movielens), cached under
<repo>/.data/datasets. Ratings keep their order and gaps; all timestamps move by one constant so
the newest lands at `newest_at` (the ingestion validation refuses events older than 3 years).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from apps.catalog.services import events_ingest, items_upsert
from apps.core.errors import ApplicationError
from ml.datasets.movielens import iter_ml100k_items, iter_ml100k_ratings

BATCH = 10_000


@dataclass(frozen=True)
class MovieLens:
    """`items`: (item id, title, genres, release unix time or None); `ratings`: (user id, item
    id, stars 1-5, unix time), file order."""

    items: list[tuple[str, str, list[str], int | None]]
    ratings: list[tuple[str, str, float, int]]


def dataset_dir() -> Path:
    return Path(settings.BASE_DIR) / ".data" / "datasets"


def movielens_read(*, max_user: int | None = None) -> MovieLens:
    """MovieLens-100K; with `max_user`, only shoppers 1..max_user and the items they rated.

    Raises RuntimeError (the wheel could not be downloaded) or ValueError (its checksum is wrong).
    """
    ratings = list(iter_ml100k_ratings(dataset_dir()))
    items = list(iter_ml100k_items(dataset_dir()))
    if max_user is not None:
        ratings = [row for row in ratings if int(row[0]) <= max_user]
        rated = {item for _, item, _, _ in ratings}
        items = [row for row in items if row[0] in rated]
    return MovieLens(items=items, ratings=ratings)


def movielens_ingest(
    data: MovieLens, *, item_prefix: str = "", newest_at: datetime | None = None
) -> int:
    """Upsert `data`'s items (id `<item_prefix><movie id>`, genres as categories, release year
    as an attribute) and ingest its ratings as `rating` events (id
    `ml100k-<user>-<item id>`, so a second load adds nothing) in the current schema, the newest
    at `newest_at` (default now). Returns the number of events accepted.

    Raises ApplicationError when the ingestion services reject a row.
    """
    rows = [
        {
            "item_id": f"{item_prefix}{item_id}",
            "title": title,
            "categories": genres,
            "attributes": (
                {"release_year": datetime.fromtimestamp(release, UTC).year} if release else {}
            ),
        }
        for item_id, title, genres, release in data.items
    ]
    for start in range(0, len(rows), BATCH):
        result = items_upsert(rows=rows[start : start + BATCH])
        if result.errors:
            raise ApplicationError(f"MovieLens item rows rejected: {result.errors[:3]}")

    newest = int((newest_at or timezone.now()).timestamp())
    shift = newest - max(ts for *_, ts in data.ratings)
    accepted = 0
    for start in range(0, len(data.ratings), BATCH):
        events = [
            {
                "event_id": f"ml100k-{user_id}-{item_prefix}{item_id}",
                "user_id": user_id,
                "item_id": f"{item_prefix}{item_id}",
                "type": "rating",
                "value": rating,
                "timestamp": datetime.fromtimestamp(ts + shift, UTC),
            }
            for user_id, item_id, rating, ts in data.ratings[start : start + BATCH]
        ]
        result = events_ingest(rows=events, source="seed")
        if result.errors:
            rejected = [error.as_dict() for error in result.errors[:3]]
            raise ApplicationError(f"MovieLens rating rows rejected: {rejected}")
        accepted += result.accepted
    return accepted
