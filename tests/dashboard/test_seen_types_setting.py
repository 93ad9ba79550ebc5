"""The store setting "which event types make an item seen" (issue 15): who may change it, what
is stored and audited, and what is refused."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.tenants.models import Tenant
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _member(alpha, store_client, role: str):
    user = UserFactory()
    MembershipFactory(user=user, tenant=alpha, role=role)
    client = store_client(alpha)
    client.force_login(user)
    return client


def _audits(alpha) -> list:
    with tenant_context(alpha):
        return list(
            AuditEvent.objects.filter(action="store.seen_types_changed").values_list(
                "details", flat=True
            )
        )


@pytest.mark.parametrize(
    ("role", "allowed"), [("owner", True), ("admin", True), ("developer", False)]
)
def test_seen_event_types_are_set_on_the_settings_page(alpha, store_client, role, allowed):
    client = _member(alpha, store_client, role)

    response = client.post("/settings/seen-types/", {"seen_event_types": ["rating", "dismiss"]})

    stored = Tenant.objects.get(pk=alpha.pk).seen_event_types
    if allowed:
        assert (response.status_code, stored) == (302, ["dismiss", "rating"])
        assert _audits(alpha) == [{"from": None, "to": ["dismiss", "rating"]}]
    else:
        assert (response.status_code, stored, _audits(alpha)) == (403, None, [])


def test_the_defaults_can_be_restored(alpha, store_client):
    Tenant.objects.filter(pk=alpha.pk).update(seen_event_types=["dismiss"])
    client = _member(alpha, store_client, "owner")

    response = client.post("/settings/seen-types/", {"use_defaults": "on"})

    assert response.status_code == 302
    assert Tenant.objects.get(pk=alpha.pk).seen_event_types is None
    assert _audits(alpha) == [{"from": ["dismiss"], "to": None}]


def test_an_unknown_event_type_is_refused(alpha, store_client):
    client = _member(alpha, store_client, "owner")

    response = client.post("/settings/seen-types/", {"seen_event_types": ["wishlist"]})

    assert response.status_code == 400
    assert Tenant.objects.get(pk=alpha.pk).seen_event_types is None
    assert _audits(alpha) == []


def test_the_settings_page_shows_the_choice(alpha, store_client):
    Tenant.objects.filter(pk=alpha.pk).update(seen_event_types=["dismiss"])
    client = _member(alpha, store_client, "owner")

    page = client.get("/settings/").content.decode()

    assert 'name="seen_event_types" value="dismiss" id="id_seen_event_types_' in page
    assert "Events that make an item seen" in page
