"""The operators' store page: stores only (not the public schema), with plan, usage, members
and models; operators sign in to the admin through allauth, so their sign-ins are audited."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import connection
from django.test import Client

from apps.audit.models import AuditEvent
from apps.tenants.models import Tenant
from apps.users.models import Membership, User

pytestmark = pytest.mark.django_db

PASSWORD = "operator-Passw0rd-long"


@pytest.fixture
def operator(db):
    connection.set_schema_to_public()
    user = User.objects.create_user(
        email="operator@example.test", password=PASSWORD, is_staff=True, is_superuser=True
    )
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def _public_client() -> Client:
    return Client(HTTP_HOST=settings.BASE_DOMAIN)


def test_the_store_list_shows_stores_not_the_platform(operator, alpha):
    client = _public_client()
    client.force_login(operator)

    page = client.get("/admin/tenants/tenant/")

    assert page.status_code == 200
    listed = {tenant.schema_name for tenant in page.context["cl"].result_list}
    assert alpha.schema_name in listed
    assert settings.PUBLIC_SCHEMA_NAME not in listed


def test_a_store_page_shows_plan_usage_members_and_models(operator, alpha):
    owner = User.objects.create_user(email="owner-admin@example.test")
    Membership.objects.create(user=owner, tenant=alpha, role=Membership.Role.OWNER)
    client = _public_client()
    client.force_login(operator)

    page = client.get(f"/admin/tenants/tenant/{alpha.pk}/change/")

    text = page.content.decode()
    assert page.status_code == 200
    assert "Plan</th><td>Free (never subscribed)" in text
    # Usage counters live in Redis, which other tests of the run also fill: the shape, not 0.
    assert re.search(r"Events ingested: [\d,]+ of [\d,]+ · Recommendation requests: ", text)
    assert "owner-admin@example.test (Owner)" in text
    assert "Models</th><td>never trained" in text


def test_operators_sign_in_to_the_admin_through_allauth_and_it_is_audited(operator):
    client = _public_client()

    login_page = client.get("/admin/login/?next=/admin/")
    assert login_page.status_code == 302
    assert login_page["Location"].startswith("/accounts/login/")

    before = AuditEvent.objects.filter(action="auth.login").count()
    response = client.post(
        "/accounts/login/" + "?next=/admin/",
        {"login": operator.email, "password": PASSWORD},
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    signed_in = AuditEvent.objects.filter(action="auth.login").order_by("-id")
    assert signed_in.count() == before + 1
    assert signed_in.first().target_id == str(operator.pk)
    assert Tenant.objects.filter(schema_name=settings.PUBLIC_SCHEMA_NAME).exists()
