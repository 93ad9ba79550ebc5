"""Activation decided by scoring the candidate and the active model on the same recent window.

One store of its own: model v1 is trained on the first 70% (in time) of the MovieLens subset
and activated; then the rest arrives and candidates are trained on everything. Each candidate
is compared with v1 on the held-out events after v1's training window (ml.comparison)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.recommendations.models import ModelVersion
from apps.recommendations.movielens import movielens_ingest
from apps.recommendations.training import activation_decision
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_create
from tests.factories import subscribe_store
from tests.recommendations.conftest import TINY_CONFIG, clear_store_keys, train_now

pytestmark = pytest.mark.django_db

# v1: a larger recipe than the tests' usual tiny one.
STRONG = {**TINY_CONFIG, "als": {"factors": 48, "iterations": 12}, "ranker": {"n_estimators": 60}}
# A recipe that scores better than v1 on its own held-out events (about 0.168 against 0.149 on
# this subset: the old rule activated it) but worse on the events after v1's training (about
# 0.119 against 0.146): 8 factors and 2 iterations cannot hold what v1 learned.
SHALLOW = {**TINY_CONFIG, "als": {"factors": 8, "iterations": 2}}
# SHALLOW loses on the window by about 0.027; the tiny recipe wins there by about 0.009 (the
# engine is still changing: margins, not exact figures, are what these tests rely on).
TOLERANCE = 0.01


@pytest.fixture(scope="module")
def window_store(django_db_setup, django_db_blocker, media_root, movielens):
    stamps = [ts for *_, ts in movielens.ratings]
    cut = int(np.quantile(stamps, 0.7))
    earlier = replace(movielens, ratings=[r for r in movielens.ratings if r[3] <= cut])
    newest_at = timezone.now() - timedelta(hours=1)
    with django_db_blocker.unblock():
        Tenant.objects.filter(slug="recs-window").delete()  # an interrupted earlier run's
        store = tenant_create(slug="recs-window", name="Recs Window")
    try:
        with django_db_blocker.unblock():
            subscribe_store(store, "growth")
            with tenant_context(store), override_settings(RECS_ACTIVATION_TOLERANCE=TOLERANCE):
                # the same time shift for both loads: the second adds only the later ratings
                shifted_cut = newest_at - timedelta(seconds=max(stamps) - cut)
                movielens_ingest(earlier, item_prefix="w", newest_at=shifted_cut)
                first = train_now(STRONG)
                movielens_ingest(movielens, item_prefix="w", newest_at=newest_at)
                shallow = train_now(SHALLOW)
                plain = train_now()
            connection.set_schema_to_public()
        yield SimpleNamespace(store=store, first=first, shallow=shallow, plain=plain)
    finally:
        with django_db_blocker.unblock():
            clear_store_keys(store.schema_name)
            with connection.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{store.schema_name}" CASCADE')
            Tenant.objects.filter(pk=store.pk).delete()
            connection.set_schema_to_public()


def _version(store, pk: int) -> ModelVersion:
    with tenant_context(store):
        return ModelVersion.objects.get(pk=pk)


def test_the_first_model_has_nothing_to_compare_with_and_activates(window_store):
    first = _version(window_store.store, window_store.first.pk)
    assert first.number == 1
    assert first.status == ModelVersion.Status.RETIRED  # replaced by `plain` later
    assert "recent_window" not in first.metrics
    assert "recent_window_skipped" not in first.metrics
    assert first.activation_note == (
        f"ndcg@10 {first.ndcg:.4f} beats popularity {first.metrics['popularity']['ndcg@10']:.4f}."
    )


def test_a_candidate_worse_on_the_shared_window_is_not_activated(window_store):
    first = _version(window_store.store, window_store.first.pk)
    shallow = _version(window_store.store, window_store.shallow.pk)
    window = shallow.metrics["recent_window"]

    # then it was scored against v1 on the events after v1's window, and lost there
    assert window["active_version"] == first.number
    assert window["since"] == first.window_end.isoformat()
    assert window["shoppers"] >= 10
    assert window["candidate"]["users"] == window["active"]["users"] == window["shoppers"]
    mine, theirs = window["candidate"]["ndcg@10"], window["active"]["ndcg@10"]
    assert mine < theirs - TOLERANCE
    # although by its own held-out figure against v1's, the old rule would have activated it
    assert shallow.ndcg >= first.ndcg - TOLERANCE
    assert shallow.status == ModelVersion.Status.READY
    assert shallow.activation_note == (
        f"Not activated: on the recent window ({window['shoppers']} shoppers' events after "
        f"v1's training) ndcg@10 {mine:.4f} is worse than v1's {theirs:.4f} by more than "
        f"{TOLERANCE:g}."
    )


def test_a_candidate_not_worse_on_the_shared_window_is_activated(window_store):
    shallow = _version(window_store.store, window_store.shallow.pk)
    plain = _version(window_store.store, window_store.plain.pk)
    window = plain.metrics["recent_window"]

    # compared with v1 (still active: the shallow candidate was not activated), on the very
    # same shoppers and events
    assert window["active_version"] == 1
    assert window["shoppers"] == shallow.metrics["recent_window"]["shoppers"]
    assert window["events"] == shallow.metrics["recent_window"]["events"]
    assert window["active"] == shallow.metrics["recent_window"]["active"]
    mine, theirs = window["candidate"]["ndcg@10"], window["active"]["ndcg@10"]
    assert mine >= theirs - TOLERANCE  # measured: about 0.009 better
    assert plain.status == ModelVersion.Status.ACTIVE
    assert plain.activation_note == (
        f"ndcg@10 {plain.ndcg:.4f} beats popularity "
        f"{plain.metrics['popularity']['ndcg@10']:.4f}; on the recent window "
        f"({window['shoppers']} shoppers' events after v1's training) {mine:.4f} against "
        f"v1's {theirs:.4f}."
    )


@override_settings(RECS_ACTIVATION_TOLERANCE=TOLERANCE)
def test_an_unreadable_active_model_falls_back_to_the_stored_figures(window_store, media_root):
    # given the active model's artifact is gone (an older engine's, say)
    plain = _version(window_store.store, window_store.plain.pk)
    (media_root / plain.artifact_path / "arrays.npz").unlink()

    # when the next candidate is trained
    with tenant_context(window_store.store):
        after = train_now()
        plain.refresh_from_db()
    connection.set_schema_to_public()

    # then the decision used each model's own held-out NDCG, and says so
    assert "recent_window" not in after.metrics
    assert after.metrics["recent_window_skipped"] == "v3 could not be read by this engine"
    assert after.ndcg >= plain.ndcg - TOLERANCE  # same data and recipe as v3
    assert after.status == ModelVersion.Status.ACTIVE
    assert after.activation_note == (
        f"ndcg@10 {after.ndcg:.4f} beats popularity "
        f"{after.metrics['popularity']['ndcg@10']:.4f} and the active model's {plain.ndcg:.4f} "
        "(compared on each model's own held-out events: v3 could not be read by this engine)."
    )


def _metrics(window: dict | None = None) -> dict:
    metrics = {
        "final": {"ndcg@10": 0.20, "strategy": "als+rerank"},
        "popularity": {"ndcg@10": 0.10},
    }
    if window is not None:
        metrics["recent_window"] = window
    return metrics


def _window(candidate: float, active: float, version: int = 4) -> dict:
    return {
        "active_version": version,
        "shoppers": 40,
        "candidate": {"ndcg@10": candidate},
        "active": {"ndcg@10": active},
    }


@pytest.mark.parametrize(
    ("metrics", "active_ndcg", "active_number", "expected"),
    [
        # the window decides, whatever the stored figures say
        (_metrics(_window(0.15, 0.18)), 0.10, 4, False),
        (_metrics(_window(0.17, 0.18)), 0.30, 4, True),  # within the 0.02 tolerance
        (_metrics(_window(0.19, 0.18)), 0.30, 4, True),
        # a window scored against another version (activated meanwhile) is ignored
        (_metrics(_window(0.19, 0.18, version=3)), 0.30, 4, False),
        (_metrics(_window(0.15, 0.18, version=3)), 0.10, 4, True),
        # the popularity rule comes first
        ({**_metrics(_window(0.19, 0.10)), "popularity": {"ndcg@10": 0.25}}, 0.10, 4, False),
    ],
)
def test_activation_rule_with_a_shared_window(metrics, active_ndcg, active_number, expected):
    activate, note = activation_decision(
        metrics, active_ndcg=active_ndcg, tolerance=0.02, active_number=active_number
    )
    assert activate is expected
    uses_window = metrics["recent_window"]["active_version"] == active_number
    assert ("on the recent window (40 shoppers' events after v4's training)" in note) is (
        uses_window and metrics["popularity"]["ndcg@10"] < 0.2
    )
