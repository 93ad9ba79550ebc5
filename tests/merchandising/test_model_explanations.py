"""Explanations of a trained model's personal list come from what put each item there: its
candidate source, stored with the cached list (ml.explain.ListReasons). A model candidate is
`similar_to` the shopper's recent item it is closest to (cosine of the model's item vectors, at
least ml.explain.MIN_SIMILARITY), else `personal_taste`; a neighbour or bought-together
candidate names the recent item whose neighbours brought it."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import orjson
import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.core.cache import redis_client
from apps.recommendations import cache as rcache
from apps.recommendations.model_store import models
from apps.recommendations.movielens import movielens_ingest, movielens_read
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_create
from ml.explain import MIN_SIMILARITY, TYPE_OF_CODE
from ml.model.state import stored_state
from tests.factories import subscribe_store
from tests.recommendations.conftest import SUBSET_USERS, clear_store_keys, train_now

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(scope="module")
def trained(django_db_setup, django_db_blocker, tmp_path_factory):
    from django.test import override_settings

    media = override_settings(MEDIA_ROOT=str(tmp_path_factory.mktemp("merch-media")))
    media.enable()
    with django_db_blocker.unblock():
        store = tenant_create(slug="merch-ml", name="Merch ML")
        subscribe_store(store, "growth")
        with tenant_context(store):
            movielens_ingest(
                movielens_read(max_user=SUBSET_USERS),
                item_prefix="m",
                newest_at=timezone.now() - timedelta(hours=1),
            )
            version = train_now()
            # A model the explanations are about: active, with vectors and a re-ranker.
            assert version.status == "active"
            assert version.strategy == "als+rerank"
        connection.set_schema_to_public()
    yield store, version
    with django_db_blocker.unblock():
        clear_store_keys(store.schema_name)
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{store.schema_name}" CASCADE')
        Tenant.objects.filter(pk=store.pk).delete()
        connection.set_schema_to_public()
    media.disable()


def test_each_item_is_explained_by_the_source_that_put_it_in_the_list(trained, api):
    store, version = trained

    response = api(store).get("/api/v1/recommendations/users/7?explain=true&k=20")

    assert response.status_code == 200
    rows = response.json()["items"]
    assert len(rows) == 20
    model = models.get(store.schema_name, version.pk, version.artifact_path).model
    u = model.user_index.get("7")
    ids = model.item_index.ids
    recent = [int(i) for i in stored_state(model, np.array([u])).recent[0] if i >= 0]
    trending_head = set(model._trend_order[: model.serving.trending_candidates].tolist())
    unit = model.item_unit

    def cosine(a: int, b: int) -> float:
        return float(unit[a] @ unit[b])

    for row in rows:
        item, reason = model.item_index.get(row["item_id"]), row["reason"]
        if reason["type"] == "similar_to":
            anchor = model.item_index.get(reason["item_id"])
            assert anchor in recent
            close = [r for r in recent if r != item]
            closest = max(close, key=lambda r: (cosine(item, r), -recent.index(r)))
            assert item in model.arrays["nbr_ids"][anchor] or (
                anchor == closest and cosine(item, anchor) >= MIN_SIMILARITY
            )
        elif reason["type"] == "bought_together":
            anchor = model.item_index.get(reason["item_id"])
            assert anchor in recent
            assert item in model.arrays["cooc_top"][anchor]
        elif reason["type"] == "personal_taste":
            assert all(cosine(item, r) < MIN_SIMILARITY for r in recent if r != item)
        elif reason["type"] == "trending_in_category":
            assert item in trending_head
        else:
            assert reason == {"type": "popular"}
    kinds = {row["reason"]["type"] for row in rows}
    assert len(kinds) >= 2, kinds
    assert "similar_to" in kinds
    assert np.isfinite([row["score"] for row in rows]).all()
    assert all(str(ids[model.item_index.get(row["item_id"])]) == row["item_id"] for row in rows)


def test_reasons_are_stored_with_the_cached_list_and_served_from_it(trained, api):
    store, version = trained
    key = rcache.list_key(store.schema_name, version.pk, "7", exclude_seen=True)
    strategy, items, reasons = orjson.loads(redis_client().get(key))
    stored = dict(zip([item for item, _ in items], reasons, strict=True))
    assert len(reasons) == len(items) == 100

    rows = api(store).get("/api/v1/recommendations/users/7?explain=true&k=20").json()["items"]

    for row in rows:
        compact = stored[row["item_id"]]
        assert row["reason"]["type"] == TYPE_OF_CODE[compact[0]]
        if compact[0] in ("s", "t"):
            assert row["reason"]["item_id"] == compact[1]
    # The cached reasons are what is served: rewrite one and the API says so.
    first = rows[0]["item_id"]
    other = next(item for item, _ in items if item != first)
    rewritten = [
        ["t", other] if item == first else reason
        for (item, _), reason in zip(items, reasons, strict=True)
    ]
    redis_client().set(key, orjson.dumps([strategy, items, rewritten]))
    try:
        again = api(store).get("/api/v1/recommendations/users/7?explain=true&k=20").json()
        assert again["items"][0]["reason"] == {"type": "bought_together", "item_id": other}
    finally:
        redis_client().set(key, orjson.dumps([strategy, items, reasons]))
