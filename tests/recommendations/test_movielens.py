"""The one MovieLens-100K loader (apps.recommendations.movielens): seed_demo and the
recommendation tests' stores both load through it."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog.models import Event, Item
from apps.recommendations import selectors
from apps.recommendations.model_store import artifact_dir
from apps.recommendations.models import ModelVersion
from apps.recommendations.movielens import movielens_ingest, movielens_read
from tests.recommendations.conftest import SUBSET_USERS, TINY_CONFIG, train_now

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


def test_seed_demo_retrains_a_store_whose_active_model_this_engine_cannot_read(alpha, media_root):
    # Given a store with data and an active model that an older engine wrote (another format).
    with tenant_context(alpha):
        movielens_ingest(movielens_read(max_user=SUBSET_USERS), item_prefix="m")
        first = train_now()
        assert first.status == ModelVersion.Status.ACTIVE
        assert selectors.model_version_active_readable() is True
        manifest = artifact_dir(first.artifact_path) / "manifest.json"
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format_version": 0}))
        assert selectors.model_version_active_readable() is False

    # When `make run` seeds the demo again.
    out = io.StringIO()
    call_command(
        "seed_demo", tenant="alpha", if_empty=True, config=json.dumps(TINY_CONFIG), stdout=out
    )

    # Then the data is left alone and a readable model is active.
    with tenant_context(alpha):
        active = selectors.model_version_active()
        readable = selectors.model_version_active_readable()
    assert "demo data not loaded" in out.getvalue()
    assert "the active model is unreadable by this engine" in out.getvalue()
    assert (active.number, readable) == (first.number + 1, True)
