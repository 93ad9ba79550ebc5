"""The one MovieLens-100K loader (apps.recommendations.movielens): seed_demo and the
recommendation tests' stores both load through it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog.models import Event, Item
from apps.recommendations.movielens import movielens_ingest, movielens_read

pytestmark = pytest.mark.django_db


def test_read_keeps_the_first_shoppers_and_the_items_they_rated():
    full = movielens_read()
    first = movielens_read(max_user=1)

    assert (len(full.items), len(full.ratings)) == (1682, 100_000)
    assert (len(first.items), len(first.ratings)) == (272, 272)
    assert first.ratings[:2] == [("1", "61", 4.0, 878542420), ("1", "189", 3.0, 888732928)]
    assert first.items[0] == ("1", "Toy Story", ["Animation", "Children's", "Comedy"], 788918400)


def test_ingest_loads_items_and_ratings_once_with_the_newest_at_the_given_time(alpha):
    data = movielens_read(max_user=1)
    newest_at = timezone.now().replace(microsecond=0) - timedelta(hours=2)

    with tenant_context(alpha):
        first = movielens_ingest(data, item_prefix="m", newest_at=newest_at)
        again = movielens_ingest(data, item_prefix="m", newest_at=newest_at)
        toy_story = Item.objects.get(item_id="m1")
        newest = Event.objects.order_by("-timestamp", "-id").first()
        events = Event.objects.filter(item_id__startswith="m").count()

    assert (first, again) == (272, 0)
    assert events == 272
    assert (toy_story.title, toy_story.categories) == (
        "Toy Story",
        ["Animation", "Children's", "Comedy"],
    )
    assert toy_story.attributes == {"release_year": 1995}
    assert (newest.event_id, newest.user_id, newest.item_id) == ("ml100k-1-m74", "1", "m74")
    assert (newest.type, newest.value, newest.timestamp) == ("rating", 1.0, newest_at)
