"""What a plan allows beyond the monthly quotas: A/B tests and webhooks as features, team
seats and trainings a day as limits. Refusals are 403 `plan_upgrade_required` naming the plan
that would allow it, and write nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.core.errors import ApplicationError
from apps.notifications.models import WebhookEndpoint
from apps.notifications.services import webhook_endpoint_create
from apps.recommendations import services as recommendation_services
from apps.recommendations.models import Experiment, ModelVersion
from apps.users.models import Invitation, Membership
from apps.users.services import invitation_accept, membership_invite
from tests.dashboard.test_models_experiments_team import EXPERIMENT_FORM
from tests.factories import MembershipFactory, ModelVersionFactory, UserFactory, api_key_for

pytestmark = pytest.mark.django_db

TWO_ARMS = [
    {"name": "control", "traffic_percent": 50},
    {"name": "trending", "strategy": "trending", "traffic_percent": 50},
]


def test_a_free_store_gets_no_ab_test_through_the_api(alpha, store_client):
    _, key = api_key_for(alpha, scopes=["manage"])

    response = store_client(alpha).post(
        "/api/v1/experiments/",
        {"name": "x", "arms": TWO_ARMS},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "plan_upgrade_required"
    assert error["message"] == (
        "A/B tests are not part of the Free plan. Upgrade to Growth on the billing page."
    )
    with tenant_context(alpha):
        assert Experiment.objects.count() == 0


def test_on_growth_the_same_experiment_starts(alpha, subscribe):
    subscribe(alpha, "growth")

    with tenant_context(alpha):
        experiment = recommendation_services.experiment_create(name="x", arms=TWO_ARMS)

    assert experiment.status == Experiment.Status.RUNNING


def test_webhooks_need_a_plan_that_has_them(alpha, subscribe, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    with tenant_context(alpha), pytest.raises(ApplicationError) as refused:
        webhook_endpoint_create(url="https://hooks.example.test/in", kinds=["training.finished"])
    assert (refused.value.code, refused.value.status_code) == ("plan_upgrade_required", 403)
    assert "Upgrade to Starter" in refused.value.message

    subscribe(alpha, "starter")
    with tenant_context(alpha):
        webhook_endpoint_create(url="https://hooks.example.test/in", kinds=["training.finished"])
        assert WebhookEndpoint.objects.count() == 1


def test_members_and_pending_invitations_share_the_plans_seats(alpha, subscribe):
    owner = MembershipFactory(tenant=alpha, role="owner").user
    membership_invite(tenant=alpha, email="second@example.test", role="analyst", acting_user=owner)

    # Free has 2 seats: the owner and the pending invitation hold them
    with pytest.raises(ApplicationError) as refused:
        membership_invite(
            tenant=alpha, email="third@example.test", role="analyst", acting_user=owner
        )

    assert refused.value.code == "plan_upgrade_required"
    assert refused.value.fields == {
        "email": [
            "The Free plan includes 2 team seats, all in use. Upgrade to Starter on the "
            "billing page."
        ]
    }
    assert Invitation.objects.filter(tenant=alpha, email="third@example.test").count() == 0

    subscribe(alpha, "starter")
    membership_invite(tenant=alpha, email="third@example.test", role="analyst", acting_user=owner)


def test_an_invitation_cannot_be_accepted_once_the_seats_are_gone(alpha, subscribe):
    subscription = subscribe(alpha, "starter")
    owner = MembershipFactory(tenant=alpha, role="owner").user
    MembershipFactory(tenant=alpha, role="admin")
    invitation = membership_invite(
        tenant=alpha, email="late@example.test", role="analyst", acting_user=owner
    )
    subscription.plan = subscription.plan.__class__.objects.get(code="free")
    subscription.save()

    with pytest.raises(ApplicationError) as refused:
        invitation_accept(invitation=invitation, acting_user=UserFactory(email="late@example.test"))

    assert refused.value.code == "plan_upgrade_required"
    assert Membership.objects.filter(tenant=alpha).count() == 2


def test_trainings_a_day_count_todays_member_starts_and_spare_staff_commands(alpha):
    member = MembershipFactory(tenant=alpha, role="developer").user
    with tenant_context(alpha):
        # the demo seed's or a staff command's training does not use up the day's one (Free),
        # nor does yesterday's
        recommendation_services.model_version_start(
            actor_label="command:seed_demo", dispatch=False, plan_limited=False
        )
        ModelVersion.objects.update(status=ModelVersion.Status.FAILED)
        yesterday = ModelVersionFactory(number=2, started_by_id=member.pk)
        ModelVersion.objects.filter(pk=yesterday.pk).update(
            created_at=timezone.now() - timedelta(days=1)
        )
        first = recommendation_services.model_version_start(acting_user=member, dispatch=False)
        ModelVersion.objects.filter(pk=first.pk).update(status=ModelVersion.Status.FAILED)

        with pytest.raises(ApplicationError) as refused:
            recommendation_services.model_version_start(acting_user=member, dispatch=False)
        assert refused.value.message == (
            "The Free plan includes 1 training a day, all in use. Upgrade to Starter on the "
            "billing page."
        )
        assert ModelVersion.objects.count() == 3

        # staff commands and the nightly schedule are not limited
        staff = recommendation_services.model_version_start(dispatch=False, plan_limited=False)
        assert staff.number == 4


def test_the_experiments_page_tells_a_free_store_which_plan_it_needs(alpha, store_client):
    with tenant_context(alpha):
        ModelVersionFactory(number=1, status="ready")
    owner = MembershipFactory(tenant=alpha, role="owner").user
    client = store_client(alpha)
    client.force_login(owner)

    response = client.post("/experiments/new/", EXPERIMENT_FORM)

    assert response.status_code == 403
    assert "A/B tests are not part of the Free plan. Upgrade to Growth" in response.content.decode()
    with tenant_context(alpha):
        assert Experiment.objects.count() == 0


def test_one_stores_plan_never_unlocks_another_stores_features(alpha, beta, subscribe):
    subscribe(alpha, "growth")

    with tenant_context(beta), pytest.raises(ApplicationError) as refused:
        recommendation_services.experiment_create(name="x", arms=TWO_ARMS)

    assert "not part of the Free plan" in refused.value.message
    with tenant_context(beta):
        assert Experiment.objects.count() == 0


@pytest.mark.parametrize(
    ("path", "form_marker", "refusal"),
    [
        ("/experiments/", 'data-testid="experiment-form"', "A/B tests are not part of the Free"),
        ("/settings/", 'action="/settings/webhooks/"', "Outgoing webhooks are not part of"),
    ],
)
def test_a_free_store_is_told_before_filling_a_form_it_cannot_submit(
    alpha, store_client, path, form_marker, refusal
):
    with tenant_context(alpha):
        ModelVersionFactory(number=1, status="ready")
    owner = MembershipFactory(tenant=alpha, role="owner").user
    client = store_client(alpha)
    client.force_login(owner)

    page = client.get(path).content.decode()

    assert refusal in page
    assert form_marker not in page


def test_the_models_page_disables_training_once_the_days_trainings_are_used(alpha, store_client):
    owner = MembershipFactory(tenant=alpha, role="owner").user
    with tenant_context(alpha):
        ModelVersionFactory(number=1, status="failed", started_by_id=owner.pk)
    client = store_client(alpha)
    client.force_login(owner)

    page = client.get("/models/").content.decode()

    assert "The Free plan includes 1 training a day, all in use." in page
    assert 'data-testid="train-button" disabled' in page
