"""Impressions logged off the request path, attribution of clicks and purchases, experiments."""

from __future__ import annotations

import math

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.catalog.services import events_ingest
from apps.recommendations import impressions
from apps.recommendations.models import Experiment, ExperimentArm, Impression
from apps.recommendations.selectors import experiment_results, two_proportion_z_test
from apps.recommendations.serving import experiment_bucket
from tests.factories import ImpressionFactory
from tests.recommendations.test_serving_api import _recent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("growth_stores")]

TWO_ARMS = [
    {"name": "control", "traffic_percent": 50},
    {"name": "trending", "traffic_percent": 50, "strategy": "trending"},
]


def test_two_proportion_z_test_matches_the_formula():
    z, p = two_proportion_z_test(100, 1000, 130, 1000)
    pooled = 230 / 2000
    expected = (0.13 - 0.10) / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert z == pytest.approx(expected)
    assert p == pytest.approx(math.erfc(expected / math.sqrt(2)))
    assert two_proportion_z_test(0, 0, 5, 10) == (None, None)
    assert two_proportion_z_test(0, 10, 0, 10) == (None, None)


def test_bucketing_is_deterministic_and_spread():
    buckets = [experiment_bucket(7, f"user-{n}") for n in range(2000)]
    assert buckets == [experiment_bucket(7, f"user-{n}") for n in range(2000)]
    assert 900 < sum(b < 50 for b in buckets) < 1100
    assert buckets != [experiment_bucket(8, f"user-{n}") for n in range(2000)]


def test_served_lists_are_logged_in_batches_and_clicks_attributed(stores, key_client):
    # given three served lists
    client = key_client(stores.a)
    served = [client.get(f"/api/v1/recommendations/users/{u}?k=3").json() for u in ("7", "8", "9")]
    with tenant_context(stores.a):
        assert Impression.objects.count() == 0  # nothing written on the request path

        # when the buffer is flushed and the store's queue copied into PostgreSQL (the process's
        # flusher thread may already have pushed some of them: what counts is what is written)
        impressions.impressions_flush()
        written = impressions.impressions_persist()
        rows = {i.recommendation_id: i for i in Impression.objects.all()}

    # then one row per list, with what was served
    assert written == 3
    first = rows[served[0]["recommendation_id"]]
    assert (first.user_id, first.surface, first.model_version_number) == ("7", "user", 1)
    assert first.item_ids == [row["item_id"] for row in served[0]["items"]]


def test_experiment_api_create_results_stop(stores, key_client, django_capture_on_commit_callbacks):
    client = key_client(stores.a, scopes=("manage", "recommend"))

    # when an experiment is created through the API
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(
            "/api/v1/experiments/",
            {"name": "trending vs model", "arms": TWO_ARMS},
            content_type="application/json",
        )
    assert created.status_code == 201
    experiment_id = created.json()["id"]
    assert [arm["name"] for arm in created.json()["arms"]] == ["control", "trending"]

    # then shoppers in the trending arm get trending lists, the others the model
    def arm_of(user: str) -> str:
        return "control" if experiment_bucket(experiment_id, user) < 50 else "trending"

    users = [str(n) for n in range(1, 21)]
    strategies = {
        u: client.get(f"/api/v1/recommendations/users/{u}?k=3").json()["strategy"] for u in users
    }
    for user in users:
        expected = "trending" if arm_of(user) == "trending" else stores.version_a.strategy
        assert strategies[user] == expected, user

    # and clicks on served lists are counted per arm
    with tenant_context(stores.a):
        impressions.impressions_flush()
        impressions.impressions_persist()
        clicked = Impression.objects.filter(experiment_id=experiment_id).first()
        events_ingest(
            rows=[
                {
                    "user_id": clicked.user_id,
                    "item_id": clicked.item_ids[0],
                    "type": "click",
                    "recommendation_id": clicked.recommendation_id,
                    "timestamp": _recent(0),
                }
            ]
        )
    connection.set_schema_to_public()
    results = client.get(f"/api/v1/experiments/{experiment_id}/results").json()
    assert sum(arm["impressions"] for arm in results["arms"]) == 20
    assert sum(arm["clicks"] for arm in results["arms"]) == 1
    assert results["arms"][0]["control"] is True
    assert set(results["arms"][1]["ctr_test"]) == {"z", "p_value", "significant"}

    # and stopping it twice: 200 then 409
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/v1/experiments/{experiment_id}/stop").status_code == 200
    again = client.post(f"/api/v1/experiments/{experiment_id}/stop")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "not_running"
    with tenant_context(stores.a):
        assert list(
            AuditEvent.objects.filter(action__startswith="experiment.")
            .order_by("id")
            .values_list("action", flat=True)
        ) == ["experiment.created", "experiment.stopped"]


def test_experiment_results_per_arm_with_z_tests(alpha):
    with tenant_context(alpha):
        experiment = Experiment.objects.create(name="exact")
        control = ExperimentArm.objects.create(
            experiment=experiment, position=0, name="a", traffic_percent=50
        )
        variant = ExperimentArm.objects.create(
            experiment=experiment, position=1, name="b", traffic_percent=50, strategy="trending"
        )
        for arm, n, clicks, purchases in ((control, 20, 2, 1), (variant, 20, 8, 3)):
            for i in range(n):
                imp = ImpressionFactory(
                    experiment_id=experiment.pk, arm_id=arm.pk, item_ids=["alpha-only"]
                )
                kinds = (["click"] if i < clicks else []) + (["purchase"] if i < purchases else [])
                events_ingest(
                    rows=[
                        {
                            "user_id": imp.user_id,
                            "item_id": "alpha-only",
                            "type": kind,
                            "recommendation_id": imp.recommendation_id,
                            "timestamp": _recent(0),
                        }
                        for kind in kinds
                    ]
                )
        # a click on an item that was not in the list is not attributed
        events_ingest(
            rows=[
                {
                    "user_id": "x",
                    "item_id": "elsewhere",
                    "type": "click",
                    "recommendation_id": imp.recommendation_id,
                    "timestamp": _recent(0),
                }
            ]
        )

        results = experiment_results(experiment=experiment)

    a, b = results["arms"]
    assert (a["impressions"], a["clicks"], a["conversions"]) == (20, 2, 1)
    assert (b["impressions"], b["clicks"], b["conversions"]) == (20, 8, 3)
    assert (a["ctr"], b["ctr"]) == (0.1, 0.4)
    z, p = two_proportion_z_test(2, 20, 8, 20)
    assert b["ctr_test"] == {"z": round(z, 4), "p_value": round(p, 6), "significant": True}


@pytest.mark.parametrize(
    ("arms", "fields"),
    [
        (
            [{"name": "a", "traffic_percent": 50}, {"name": "b", "traffic_percent": 40}],
            {"arms": ["traffic_percent must add up to 100"]},
        ),
        (
            [{"name": "a", "traffic_percent": 50}, {"name": "a", "traffic_percent": 50}],
            {"arms": [{"index": 1, "name": ["arm names must be unique"]}]},
        ),
        (
            [
                {"name": "a", "traffic_percent": 50},
                {"name": "b", "traffic_percent": 50, "model_version": 99},
            ],
            {"arms": [{"index": 1, "model_version": ["no trained version v99"]}]},
        ),
        (
            [{"name": "a\x00", "traffic_percent": 50}, {"name": "b", "traffic_percent": 50}],
            {"arms": [{"index": 0, "name": ["must not contain control characters"]}]},
        ),
    ],
)
def test_invalid_experiments_are_400_and_write_nothing(alpha, key_client, arms, fields):
    client = key_client(alpha, scopes=("manage",))

    response = client.post(
        "/api/v1/experiments/", {"name": "x", "arms": arms}, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == fields
    with tenant_context(alpha):
        assert Experiment.objects.count() == 0


def test_experiments_need_the_manage_scope(alpha, key_client):
    response = key_client(alpha, scopes=("recommend",)).post(
        "/api/v1/experiments/", {"name": "x", "arms": TWO_ARMS}, content_type="application/json"
    )
    assert response.status_code == 403
    with tenant_context(alpha):
        assert Experiment.objects.count() == 0
