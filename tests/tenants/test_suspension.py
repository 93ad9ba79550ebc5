import pytest

from apps.tenants.models import Tenant
from apps.tenants.services import tenant_reactivate, tenant_suspend

pytestmark = pytest.mark.django_db


def test_suspended_store_answers_403_page_and_json(alpha, store_client):
    tenant_suspend(tenant=alpha, reason="unpaid")
    client = store_client(alpha)

    page = client.get("/")
    api = client.get("/api/v1/items/", HTTP_ACCEPT="application/json")

    assert page.status_code == 403
    assert "This store is suspended" in page.content.decode()
    assert api.status_code == 403
    assert api.json()["error"]["code"] == "store_suspended"
    assert Tenant.objects.get(pk=alpha.pk).suspended_reason == "unpaid"


def test_reactivated_store_serves_again(alpha, member_client):
    tenant_suspend(tenant=alpha)
    tenant_reactivate(tenant=alpha)

    assert member_client(alpha)[0].get("/").status_code == 200


def test_other_stores_are_unaffected_by_a_suspension(alpha, beta, member_client):
    tenant_suspend(tenant=alpha)

    assert member_client(beta)[0].get("/").status_code == 200
