"""Models, experiments and team pages of the dashboard: the role matrix on every page and
action (analysts look, they do not train, activate or experiment), nothing of store B for a
member of store A, and nothing written on a denied POST."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.catalog.models import Event
from apps.recommendations import services as recommendation_services
from apps.recommendations.models import Experiment, ModelVersion
from apps.users.models import Invitation
from apps.users.services import membership_invite
from tests.factories import (
    ROLES,
    EventFactory,
    ImpressionFactory,
    MembershipFactory,
    ModelVersionFactory,
    UserFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("growth_stores")]

TRAINERS = {"owner", "admin", "developer"}

METRICS = {
    "final": {
        "ndcg@10": 0.25,
        "precision@10": 0.12,
        "recall@10": 0.3,
        "coverage": 0.4,
        "strategy": "reranker",
    },
    "popularity": {"ndcg@10": 0.2, "precision@10": 0.1, "recall@10": 0.24, "coverage": 0.05},
}


_audit_start: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _audit_baseline(alpha, beta):
    """Audit rows other tests committed to the shared stores are not this test's."""
    for tenant in (alpha, beta):
        with tenant_context(tenant):
            _audit_start[tenant.schema_name] = (
                AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
            )


def _audit_actions(tenant) -> list[str]:
    """Actions audited in `tenant` since the test began."""
    with tenant_context(tenant):
        return list(
            AuditEvent.objects.filter(id__gt=_audit_start[tenant.schema_name])
            .order_by("id")
            .values_list("action", flat=True)
        )


def _versions(tenant) -> list[tuple[int, str]]:
    with tenant_context(tenant):
        return list(ModelVersion.objects.order_by("number").values_list("number", "status"))


@pytest.fixture
def experiment(alpha):
    with tenant_context(alpha):
        return recommendation_services.experiment_create(
            name="Trending vs model",
            arms=[
                {"name": "control", "traffic_percent": 50},
                {"name": "trending", "strategy": "trending", "traffic_percent": 50},
            ],
            actor_label="fixture",
        )


# --- who opens what -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", ["/models/", "/experiments/", "/team/", "experiment"])
def test_every_role_opens_the_new_pages(alpha, member_client, experiment, role, path):
    client, _ = member_client(alpha, role)
    if path == "experiment":
        path = f"/experiments/{experiment.pk}/"

    response = client.get(path)

    assert response.status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_action_controls_show_only_to_roles_that_may_use_them(alpha, member_client, role):
    with tenant_context(alpha):
        ModelVersionFactory(number=1, metrics=METRICS)
    client, _ = member_client(alpha, role)

    models_page = client.get("/models/").content.decode()
    experiments_page = client.get("/experiments/").content.decode()

    assert ('data-testid="train-button"' in models_page) is (role in TRAINERS)
    assert ('aria-label="Activate v1"' in models_page) is (role in TRAINERS)
    assert ('data-testid="experiment-form"' in experiments_page) is (role in TRAINERS)


@pytest.mark.parametrize(
    "path", ["/models/", "/experiments/", "/team/", "experiment", "/models/train/"]
)
def test_member_of_alpha_gets_nothing_of_betas_pages(alpha, beta, store_client, path):
    user = UserFactory()
    MembershipFactory(user=user, tenant=alpha, role="owner")
    with tenant_context(beta):
        ModelVersionFactory(number=7, metrics=METRICS, started_by_label="beta-trainer")
        beta_experiment = recommendation_services.experiment_create(
            name="Beta secret test",
            arms=[
                {"name": "control", "traffic_percent": 50},
                {"name": "b", "strategy": "popularity", "traffic_percent": 50},
            ],
        )
    client = store_client(beta)
    client.force_login(user)
    if path == "experiment":
        path = f"/experiments/{beta_experiment.pk}/"

    response = client.get(path) if path != "/models/train/" else client.post(path)

    body = response.content.decode()
    assert response.status_code == 403
    assert "You are not a member of this store." in body
    assert "beta-trainer" not in body
    assert "Beta secret test" not in body
    assert _versions(beta) == [(7, "ready")]


def test_member_of_alpha_cannot_act_on_betas_models_or_experiments(alpha, beta, store_client):
    user = UserFactory()
    MembershipFactory(user=user, tenant=alpha, role="owner")
    with tenant_context(beta):
        ModelVersionFactory(number=1, status="retired", activated_at=timezone.now())
        ModelVersionFactory(number=2, status="active", activated_at=timezone.now())
        ModelVersionFactory(number=3, status="ready")
        running = recommendation_services.experiment_create(
            name="Beta running",
            arms=[
                {"name": "control", "traffic_percent": 50},
                {"name": "b", "strategy": "popularity", "traffic_percent": 50},
            ],
        )
    audit_before = _audit_actions(beta)
    client = store_client(beta)
    client.force_login(user)

    statuses = [
        client.post("/models/3/activate/").status_code,
        client.post("/models/rollback/").status_code,
        client.post(f"/experiments/{running.pk}/stop/").status_code,
        client.post(
            "/experiments/new/",
            {"name": "x", "arm-0-name": "a", "arm-0-source": "strategy:model"},
        ).status_code,
    ]

    assert statuses == [403, 403, 403, 403]
    assert _versions(beta) == [(1, "retired"), (2, "active"), (3, "ready")]
    with tenant_context(beta):
        assert list(Experiment.objects.values_list("name", "status")) == [
            ("Beta running", "running")
        ]
    assert _audit_actions(beta) == audit_before


# --- models -------------------------------------------------------------------------------


def test_models_page_lists_versions_with_metrics_against_the_baseline(alpha, member_client):
    with tenant_context(alpha):
        ModelVersionFactory(
            number=1,
            status="retired",
            metrics={"final": {"ndcg@10": 0.1}, "popularity": {"ndcg@10": 0.12}},
            started_by_label="nightly",
        )
        ModelVersionFactory(
            number=2,
            status="active",
            metrics=METRICS,
            counts={"events": 1234, "shoppers": 56, "items": 78},
            started_by_label="owner@example.test",
            strategy="reranker",
        )
        ModelVersionFactory(number=3, status="failed", error="ValueError: no events")
    client, _ = member_client(alpha, "analyst")

    response = client.get("/models/")

    page = response.content.decode()
    assert [row["version"].number for row in response.context["versions"]] == [3, 2, 1]
    v2 = response.context["versions"][1]["metrics"]
    assert {name: (row["model"], row["baseline"]) for name, row in v2.items()} == {
        "ndcg@10": (0.25, 0.2),
        "precision@10": (0.12, 0.1),
        "recall@10": (0.3, 0.24),
        "coverage": (0.4, 0.05),
    }
    assert v2["ndcg@10"]["lift"] == pytest.approx(0.25)
    assert '0.2500 / <span class="muted">0.2000</span>' in page
    assert "+25.0%" in page
    assert "1,234 · 56 · 78" in page
    assert "by owner@example.test" in page
    assert "ValueError: no events" in page
    assert response.context["chart"] == {
        "labels": ["v1", "v2"],
        "datasets": [
            {"label": "Model NDCG@10", "data": [0.1, 0.25]},
            {"label": "Popularity baseline NDCG@10", "data": [0.12, 0.2]},
        ],
    }
    chart_json = page.split('id="versions-chart-data" type="application/json">')[1]
    assert json.loads(chart_json.split("</script>")[0]) == response.context["chart"]


@pytest.mark.parametrize("role", ROLES)
def test_train_now_follows_the_role_matrix(alpha, member_client, role):
    client, user = member_client(alpha, role)

    response = client.post("/models/train/", HTTP_ACCEPT="application/json")

    if role in TRAINERS:
        assert response.status_code == 202
        with tenant_context(alpha):
            version = ModelVersion.objects.get()
        assert response.json() == {
            "model_version": version.pk,
            "number": 1,
            "status": "training",
        }
        assert (version.started_by_id, version.started_by_label) == (user.pk, user.email)
        assert _audit_actions(alpha) == ["model.training_started"]
    else:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
        assert _versions(alpha) == []
        assert _audit_actions(alpha) == []


def test_train_now_without_javascript_returns_to_the_page(alpha, member_client):
    client, _ = member_client(alpha, "developer")

    response = client.post("/models/train/", follow=True)

    assert response.redirect_chain == [("/models/", 302)]
    assert "Training of v1 started." in response.content.decode()
    assert response.context["training"].number == 1


def test_a_second_training_is_refused_while_one_runs(alpha, member_client):
    with tenant_context(alpha):
        ModelVersionFactory(number=1, status="training")
    client, _ = member_client(alpha, "owner")

    response = client.post("/models/train/", HTTP_ACCEPT="application/json")

    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "training_in_progress",
            "message": "A training of this store is already running.",
            "fields": {},
        }
    }
    assert _versions(alpha) == [(1, "training")]
    assert _audit_actions(alpha) == []


@pytest.mark.parametrize("role", ROLES)
def test_activate_follows_the_role_matrix(alpha, member_client, role):
    with tenant_context(alpha):
        ModelVersionFactory(number=1, status="active", activated_at=timezone.now())
        ModelVersionFactory(number=2, status="ready", metrics=METRICS)
    client, user = member_client(alpha, role)

    response = client.post("/models/2/activate/")

    if role in TRAINERS:
        assert response.status_code == 302
        assert _versions(alpha) == [(1, "retired"), (2, "active")]
        with tenant_context(alpha):
            audit = AuditEvent.objects.get(action="model.activated")
        assert (audit.actor_user_id, audit.target_id) == (user.pk, "2")
        assert audit.details["previous"] == 1
    else:
        assert response.status_code == 403
        assert _versions(alpha) == [(1, "active"), (2, "ready")]
        assert _audit_actions(alpha) == []


def test_activating_an_unknown_or_failed_version(alpha, member_client):
    with tenant_context(alpha):
        ModelVersionFactory(number=1, status="failed")
    client, _ = member_client(alpha, "owner")

    missing = client.post("/models/9/activate/")
    failed = client.post("/models/1/activate/", follow=True)

    assert missing.status_code == 404
    assert "Version v1 is failed and cannot be activated." in failed.content.decode()
    assert _versions(alpha) == [(1, "failed")]
    assert _audit_actions(alpha) == []


@pytest.mark.parametrize("role", ROLES)
def test_rollback_follows_the_role_matrix(alpha, member_client, role):
    earlier = timezone.now() - timedelta(days=1)
    with tenant_context(alpha):
        ModelVersionFactory(number=1, status="retired", activated_at=earlier)
        ModelVersionFactory(number=2, status="active", activated_at=timezone.now())
    client, _ = member_client(alpha, role)

    response = client.post("/models/rollback/")

    if role in TRAINERS:
        assert response.status_code == 302
        assert _versions(alpha) == [(1, "active"), (2, "retired")]
        assert _audit_actions(alpha) == ["model.rolled_back"]
    else:
        assert response.status_code == 403
        assert _versions(alpha) == [(1, "retired"), (2, "active")]
        assert _audit_actions(alpha) == []


def test_rollback_with_nothing_to_go_back_to(alpha, member_client):
    client, _ = member_client(alpha, "admin")

    response = client.post("/models/rollback/", follow=True)

    assert response.status_code == 200
    assert "There is no previously active version to roll back to." in response.content.decode()
    assert _audit_actions(alpha) == []


# --- experiments --------------------------------------------------------------------------

EXPERIMENT_FORM = {
    "name": "Reranker vs trending",
    "arm-0-name": "control",
    "arm-0-source": "strategy:model",
    "arm-0-traffic": "60",
    "arm-1-name": "v1",
    "arm-1-source": "version:1",
    "arm-1-traffic": "30",
    "arm-2-name": "trending",
    "arm-2-source": "strategy:trending",
    "arm-2-traffic": "10",
    "arm-3-name": "",
    "arm-3-source": "strategy:model",
    "arm-3-traffic": "",
}


@pytest.mark.parametrize("role", ROLES)
def test_create_experiment_follows_the_role_matrix(alpha, member_client, role):
    with tenant_context(alpha):
        ModelVersionFactory(number=1, status="ready")
    client, user = member_client(alpha, role)

    response = client.post("/experiments/new/", EXPERIMENT_FORM)

    with tenant_context(alpha):
        experiments = list(Experiment.objects.all())
        arms = [
            (
                a.position,
                a.name,
                a.strategy,
                a.model_version and a.model_version.number,
                a.traffic_percent,
            )
            for e in experiments
            for a in e.arms.order_by("position")
        ]
    if role in TRAINERS:
        assert response.status_code == 302
        assert response["Location"] == f"/experiments/{experiments[0].pk}/"
        assert [(e.name, e.status, e.created_by_label) for e in experiments] == [
            ("Reranker vs trending", "running", user.email)
        ]
        assert arms == [
            (0, "control", "model", None, 60),
            (1, "v1", "model", 1, 30),
            (2, "trending", "trending", None, 10),
        ]
        assert _audit_actions(alpha) == ["experiment.created"]
    else:
        assert response.status_code == 403
        assert experiments == []
        assert _audit_actions(alpha) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"arm-2-traffic": "20"}, "The arms&#x27; traffic_percent must add up to 100."),
        (
            {"arm-1-traffic": "thirty"},
            "Arm 2: the traffic share must be a whole number of percent.",
        ),
        ({"arm-1-source": "version:5"}, "Invalid arm 1: no trained version v5"),
        ({"arm-1-source": ""}, "Arm 2: choose what it serves."),
        ({"name": " "}, "An experiment name of 1 to 100 characters is required."),
        ({"arm-1-name": "control"}, "Invalid arm 1: arm names must be unique"),
        # A NUL byte answered 500 (PostgreSQL text cannot hold one), issue 13.
        ({"arm-1-name": "v\x001"}, "Invalid arm 1: must not contain control characters"),
        ({"name": "A\x00B"}, "The experiment name must not contain control characters."),
    ],
)
def test_invalid_experiments_are_refused_and_nothing_is_written(
    alpha, member_client, change, message
):
    with tenant_context(alpha):
        ModelVersionFactory(number=1, status="ready")
    client, _ = member_client(alpha, "owner")

    response = client.post("/experiments/new/", {**EXPERIMENT_FORM, **change})

    page = response.content.decode()
    assert response.status_code == 400
    assert message in page
    # The typed rows come back for correction.
    assert 'value="Reranker vs trending"' in page or "name" in change
    with tenant_context(alpha):
        assert Experiment.objects.count() == 0
    assert _audit_actions(alpha) == []


def test_a_second_running_experiment_is_refused(alpha, member_client, experiment):
    client, _ = member_client(alpha, "admin")

    response = client.post(
        "/experiments/new/", EXPERIMENT_FORM | {"arm-1-source": "strategy:popularity"}
    )

    assert response.status_code == 409
    assert "Another experiment is running; stop it first." in response.content.decode()
    with tenant_context(alpha):
        assert list(Experiment.objects.values_list("name", flat=True)) == ["Trending vs model"]


def test_experiment_page_shows_arm_results_and_significance(alpha, member_client, experiment):
    # Given 100 lists served per arm, 10 clicked in the control and 30 in the trending arm
    # (pooled p = 0.2, z = 0.2 / sqrt(0.2 * 0.8 * 0.02) = 3.5355, two-sided p = erfc(2.5)).
    with tenant_context(alpha):
        control, trending = experiment.arms.order_by("position")
        for arm, clicked in ((control, 10), (trending, 30)):
            for n in range(100):
                impression = ImpressionFactory(
                    experiment_id=experiment.pk, arm_id=arm.pk, item_ids=["sku-1", "sku-2"]
                )
                if n < clicked:
                    EventFactory(
                        type=Event.Type.CLICK,
                        user_id=impression.user_id,  # attributed: the shopper it was served to
                        item_id="sku-2",
                        recommendation_id=impression.recommendation_id,
                    )
    client, _ = member_client(alpha, "analyst")

    response = client.get(f"/experiments/{experiment.pk}/")

    page = response.content.decode()
    arms = response.context["results"]["arms"]
    assert [(a["arm"], a["impressions"], a["clicks"], a["ctr"]) for a in arms] == [
        ("control", 100, 10, 0.1),
        ("trending", 100, 30, 0.3),
    ]
    assert arms[1]["ctr_test"] == {"z": 3.5355, "p_value": 0.000407, "significant": True}
    assert "10.00%" in page
    assert "30.00%" in page
    assert '0.0004 <span class="pill pill-ok">significant</span>' in page
    assert "z = 3.54" in page
    assert 'data-testid="experiment-stop"' not in page  # analysts do not stop experiments


@pytest.mark.parametrize("role", ROLES)
def test_stop_experiment_follows_the_role_matrix(alpha, member_client, experiment, role):
    client, _ = member_client(alpha, role)
    audit_before = _audit_actions(alpha)

    response = client.post(f"/experiments/{experiment.pk}/stop/")

    with tenant_context(alpha):
        status = Experiment.objects.get(pk=experiment.pk).status
    if role in TRAINERS:
        assert response.status_code == 302
        assert status == "stopped"
        assert _audit_actions(alpha) == [*audit_before, "experiment.stopped"]
    else:
        assert response.status_code == 403
        assert status == "running"
        assert _audit_actions(alpha) == audit_before


def test_unknown_experiment_is_404(alpha, member_client):
    client, _ = member_client(alpha, "owner")

    assert client.get("/experiments/999999/").status_code == 404
    assert client.post("/experiments/999999/stop/").status_code == 404


# --- team ---------------------------------------------------------------------------------


def test_team_is_in_the_store_navigation(alpha, member_client):
    client, _ = member_client(alpha, "analyst")

    page = client.get("/team/").content.decode()

    assert '<a href="/team/" aria-current="page">Team</a>' in page
    assert '<a href="/models/">Models</a>' in page
    assert '<a href="/experiments/">Experiments</a>' in page


@pytest.mark.parametrize(("role", "allowed"), [(r, r in {"owner", "admin"}) for r in ROLES])
def test_revoking_an_invitation_follows_manage_members(alpha, member_client, role, allowed):
    client, _ = member_client(alpha, role)
    invitation = membership_invite(tenant=alpha, email="new@example.test", role="analyst")
    audit_before = _audit_actions(alpha)

    page = client.get("/team/").content.decode()
    response = client.post(f"/team/invitations/{invitation.pk}/revoke/")

    invitation.refresh_from_db()
    assert (f"/team/invitations/{invitation.pk}/revoke/" in page) is allowed
    if allowed:
        assert response.status_code == 302
        assert response["Location"] == "/team/"
        assert invitation.status == Invitation.Status.REVOKED
        assert _audit_actions(alpha) == [*audit_before, "member.invitation_revoked"]
    else:
        assert response.status_code == 403
        assert invitation.status == Invitation.Status.PENDING
        assert _audit_actions(alpha) == audit_before


def test_an_admin_of_beta_cannot_revoke_alphas_invitation(alpha, beta, member_client):
    client, _ = member_client(beta, "owner")
    invitation = membership_invite(tenant=alpha, email="new@example.test", role="analyst")

    response = client.post(f"/team/invitations/{invitation.pk}/revoke/")

    invitation.refresh_from_db()
    assert response.status_code == 404
    assert invitation.status == Invitation.Status.PENDING


def test_list_pages_do_not_query_per_row(alpha, member_client, page_queries):
    client, _ = member_client(alpha, "owner")
    with tenant_context(alpha):
        ModelVersionFactory(number=1, metrics=METRICS)
        first = recommendation_services.experiment_create(
            name="first",
            arms=[
                {"name": "a", "traffic_percent": 50},
                {"name": "b", "model_version": 1, "traffic_percent": 50},
            ],
        )
    one = (page_queries(client, "/models/"), page_queries(client, "/experiments/"))
    with tenant_context(alpha):
        recommendation_services.experiment_stop(experiment=first)
        for number in (2, 3, 4):
            ModelVersionFactory(number=number, metrics=METRICS)
            recommendation_services.experiment_create(
                name=f"e{number}",
                arms=[
                    {"name": "a", "traffic_percent": 50},
                    {"name": "b", "model_version": number, "traffic_percent": 50},
                ],
            )
            if number != 4:
                recommendation_services.experiment_stop(
                    experiment=Experiment.objects.get(name=f"e{number}")
                )

    many = (page_queries(client, "/models/"), page_queries(client, "/experiments/"))

    assert many == one
