"""Operators run stores from Django admin on the public domain."""

import pytest

from apps.audit.models import AuditEvent
from apps.tenants.models import Tenant
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(public_client):
    operator = UserFactory(email="ops@platform.test", is_staff=True, is_superuser=True)
    public_client.force_login(operator)
    return public_client, operator


def test_operator_suspends_and_reactivates_from_admin_with_audit(alpha, operator_client):
    client, operator = operator_client

    suspended = client.post(
        "/admin/tenants/tenant/",
        {"action": "suspend_stores", "_selected_action": [alpha.pk]},
    )
    status_after_suspend = Tenant.objects.get(pk=alpha.pk).status
    reactivated = client.post(
        "/admin/tenants/tenant/",
        {"action": "reactivate_stores", "_selected_action": [alpha.pk]},
    )

    assert suspended.status_code == 302
    assert reactivated.status_code == 302
    assert status_after_suspend == "suspended"
    assert Tenant.objects.get(pk=alpha.pk).status == "active"
    events = AuditEvent.objects.filter(
        action__in=["tenant.suspended", "tenant.reactivated"], target_id="alpha"
    ).order_by("id")
    assert [(e.action, e.actor_user_id) for e in events] == [
        ("tenant.suspended", operator.pk),
        ("tenant.reactivated", operator.pk),
    ]


def test_admin_lists_and_searches_stores(alpha, beta, operator_client):
    client, _ = operator_client

    page = client.get("/admin/tenants/tenant/", {"q": "alpha"}).content.decode()

    assert "Alpha Store" in page
    assert "Beta Store" not in page


def test_store_members_cannot_reach_the_operators_admin(alpha, public_client):
    public_client.force_login(UserFactory(email="shopkeeper@alpha.test"))

    response = public_client.get("/admin/tenants/tenant/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("selected", ["abc", "9" * 25, ""])
@pytest.mark.parametrize(
    ("path", "action"),
    [("/admin/tenants/tenant/", "suspend_stores"), ("/admin/users/user/", "delete_selected")],
)
def test_an_action_on_ids_that_are_not_keys_is_refused_not_a_500(
    alpha, operator_client, path, action, selected
):
    client, _ = operator_client

    response = client.post(path, {"action": action, "_selected_action": [alpha.pk, selected]})

    assert response.status_code == 302
    assert Tenant.objects.get(pk=alpha.pk).status == "active"
