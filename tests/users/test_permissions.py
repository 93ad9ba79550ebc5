"""The role matrix, on the matrix itself, store pages and the session API; and membership
checked on every store request."""

import pytest
from django_tenants.utils import tenant_context

from apps.apikeys.models import ApiKey
from apps.users.models import Invitation
from apps.users.permissions import ACTIONS, can
from tests.factories import ROLES, MembershipFactory

pytestmark = pytest.mark.django_db

ALLOWED = {
    "view": {"owner", "admin", "developer", "analyst"},
    "manage_api_keys": {"owner", "admin", "developer"},
    "train_models": {"owner", "admin", "developer"},
    "manage_members": {"owner", "admin"},
    "manage_billing": {"owner"},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS)
def test_the_matrix(role, action):
    assert can(role, action) is (role in ALLOWED[action])


def test_no_role_can_nothing_and_unknown_actions_fail_loudly():
    assert [can(None, action) for action in ACTIONS] == [False] * 5
    with pytest.raises(ValueError, match="Unknown permission action 'fly'"):
        can("owner", "fly")


@pytest.mark.parametrize("role", ROLES)
def test_team_page_is_open_to_every_role(alpha, member_client, role):
    client, _ = member_client(alpha, role)

    response = client.get("/team/")

    assert response.status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_api_keys_page_and_api_follow_the_matrix(alpha, member_client, role):
    client, _ = member_client(alpha, role)
    expected = 200 if role in ALLOWED["manage_api_keys"] else 403

    page = client.get("/api-keys/")
    api = client.get("/api/v1/api-keys/")
    created = client.post(
        "/api/v1/api-keys/", {"name": "k", "scopes": ["ingest"]}, content_type="application/json"
    )

    assert page.status_code == expected
    assert api.status_code == expected
    assert created.status_code == (201 if expected == 200 else 403)
    with tenant_context(alpha):
        assert ApiKey.objects.count() == (1 if expected == 200 else 0)
    if expected == 403:
        assert api.json() == {
            "error": {
                "code": "permission_denied",
                "message": f"Your role ({role}) does not allow this.",
                "fields": {},
            }
        }


@pytest.mark.parametrize("role", ROLES)
def test_inviting_follows_the_matrix(alpha, member_client, role):
    client, _ = member_client(alpha, role)
    allowed = role in ALLOWED["manage_members"]

    response = client.post("/team/invite/", {"email": "new@x.test", "role": "analyst"})

    assert response.status_code == (302 if allowed else 403)
    assert Invitation.objects.filter(email="new@x.test").count() == (1 if allowed else 0)


@pytest.mark.parametrize("role", ROLES)
def test_transferring_ownership_follows_the_matrix(alpha, member_client, role):
    client, _ = member_client(alpha, role)
    other = MembershipFactory(tenant=alpha, role="admin")
    allowed = role in ALLOWED["manage_billing"]

    response = client.post(f"/team/members/{other.pk}/transfer/")

    other.refresh_from_db()
    assert response.status_code == (302 if allowed else 403)
    assert other.role == ("owner" if allowed else "admin")


def test_anonymous_store_pages_send_to_sign_in_on_the_public_site(alpha, store_client):
    response = store_client(alpha).get("/team/?x=1")

    assert response.status_code == 302
    assert response["Location"] == "http://localhost/stores/alpha/go/?next=%2Fteam%2F%3Fx%3D1"


def test_a_member_of_store_a_gets_nothing_of_store_b(member_client, alpha, beta, store_client):
    client, _ = member_client(alpha, "owner")
    with tenant_context(beta):
        ApiKey.objects.create(
            name="beta-key", prefix="b" * 12, secret_hash="0" * 64, scopes=["ingest"]
        )
    beta_client = store_client(beta)
    beta_client.cookies = client.cookies

    page = beta_client.get("/")
    team = beta_client.get("/team/")
    keys_page = beta_client.get("/api-keys/")
    keys_api = beta_client.get("/api/v1/api-keys/")

    assert page.status_code == 403
    assert "Beta only item" not in page.content.decode()
    assert team.status_code == 403
    assert keys_page.status_code == 403
    assert keys_api.status_code == 401
    assert "beta-key" not in keys_api.content.decode()
