"""Explanations of a trained model's personal list: `similar_to` names the shopper's recent
item the candidate is closest to (cosine of the model's item vectors, at least
ml.explain.MIN_SIMILARITY, the most similar of the recent items), else `personal_taste`."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog.recent import recent_from_database
from apps.recommendations.model_store import models
from apps.recommendations.movielens import movielens_ingest, movielens_read
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_create
from ml.explain import MIN_SIMILARITY
from tests.factories import subscribe_store
from tests.recommendations.conftest import clear_store_keys, train_now

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
                movielens_read(max_user=60),
                item_prefix="m",
                newest_at=timezone.now() - timedelta(hours=1),
            )
            version = train_now()
        connection.set_schema_to_public()
    yield store, version
    with django_db_blocker.unblock():
        clear_store_keys(store.schema_name)
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{store.schema_name}" CASCADE')
        Tenant.objects.filter(pk=store.pk).delete()
        connection.set_schema_to_public()
    media.disable()


def test_each_model_item_is_explained_by_its_closest_recent_item(trained, api):
    store, version = trained

    response = api(store).get("/api/v1/recommendations/users/7?explain=true&k=20")

    assert response.status_code == 200
    rows = response.json()["items"]
    assert len(rows) == 20
    # What the shopper did last (5 distinct items, oldest first) and the model's vectors.
    with tenant_context(store):
        events = recent_from_database("7", 0.0)
    recent: list[str] = []
    for event in reversed(events):
        if event[0] not in recent:
            recent.append(event[0])
    recent = list(reversed(recent[:5]))
    model = models.get(store.schema_name, version.pk, version.artifact_path).model
    unit = model.item_unit
    index = model.item_index
    expected = []
    for row in rows:
        sims = [float(unit[index.get(row["item_id"])] @ unit[index.get(r)]) for r in recent]
        best = max(range(len(recent)), key=lambda n: (sims[n], n))
        if sims[best] >= MIN_SIMILARITY:
            expected.append({"type": "similar_to", "item_id": recent[best]})
        else:
            expected.append({"type": "personal_taste"})
    assert [row["reason"] for row in rows] == expected
    assert any(reason["type"] == "similar_to" for reason in expected)
    assert np.isfinite([row["score"] for row in rows]).all()
