"""Signup → verified email → owner of a new, working store, end to end; sign-ins audited."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.db import connection
from django_tenants.utils import schema_exists

from apps.audit.models import AuditEvent
from apps.tenants.models import Tenant
from apps.users.models import Membership, User
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "Sturdy-Passw0rd-42"


def _signup(public_client, **overrides):
    data = {
        "email": "founder@omega.test",
        "password1": PASSWORD,
        "password2": PASSWORD,
        "store_name": "Omega Outfitters",
        "store_slug": "omega",
        **overrides,
    }
    return public_client.post("/accounts/signup/", data)


def _follow_handoff(store_client, tenant, location):
    parts = urlsplit(location)
    assert parts.netloc == f"{tenant.slug}.localhost"
    assert parts.path == "/accounts/handoff/"
    client = store_client(tenant)
    response = client.get(
        parts.path,
        parse_qs(parts.query) and {key: values[0] for key, values in parse_qs(parts.query).items()},
    )
    return client, response


def test_signup_verify_and_land_as_owner_of_a_working_store(public_client, store_client):
    response = _signup(public_client)

    assert response.status_code == 302
    tenant = Tenant.objects.get(slug="omega")
    user = User.objects.get(email="founder@omega.test")
    assert tenant.name == "Omega Outfitters"
    assert schema_exists("store_omega")
    assert Membership.objects.get(tenant=tenant).role == "owner"
    assert Membership.objects.get(tenant=tenant).user == user
    assert AuditEvent.objects.filter(action="tenant.created", target_id="omega").count() == 1

    # Not signed in before the email is verified.
    assert "_auth_user_id" not in public_client.session
    confirm_path = re.search(
        r"http://localhost(/accounts/confirm-email/[^\s]+)", mail.outbox[-1].body
    ).group(1)
    confirmed = public_client.post(confirm_path)

    assert confirmed.status_code == 302
    client, landed = _follow_handoff(store_client, tenant, confirmed["Location"])
    assert landed.status_code == 302
    assert landed["Location"] == "/"
    dashboard = client.get("/team/")
    assert dashboard.status_code == 200
    assert "founder@omega.test" in dashboard.content.decode()
    connection.set_schema_to_public()
    assert AuditEvent.objects.filter(action="auth.login", actor_user_id=user.pk).count() == 1


def test_signup_with_a_taken_address_creates_neither_user_nor_store(alpha, public_client):
    tenants_before = Tenant.objects.count()

    response = _signup(public_client, store_slug="alpha")

    assert response.status_code == 200
    page = response.content.decode()
    assert "A store with this address already exists." in page
    # The error sits with the address field (after the name field), and help texts are text.
    assert page.index('name="store_name"') < page.index("already exists")
    assert page.index('name="store_slug"') < page.index("already exists")
    assert "<address>" not in page
    assert Tenant.objects.count() == tenants_before
    assert not User.objects.filter(email="founder@omega.test").exists()


def test_signup_requires_the_store_fields(public_client):
    response = _signup(public_client, store_name="", store_slug="")

    body = response.content.decode()
    assert response.status_code == 200
    assert "Name your store." in body
    assert "Choose your store&#x27;s address." in body
    assert not User.objects.filter(email="founder@omega.test").exists()


def _verified_user(email, tenant=None):
    user = UserFactory(email=email, password=PASSWORD)
    user.emailaddress_set.create(email=email, verified=True, primary=True)
    if tenant is not None:
        MembershipFactory(user=user, tenant=tenant, role="owner")
    return user


def test_login_success_and_failure_are_audited_once_each(alpha, public_client):
    user = _verified_user("owner@alpha.test", alpha)

    failed = public_client.post("/accounts/login/", {"login": user.email, "password": "wrong"})
    ok = public_client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})

    assert failed.status_code == 200
    assert ok.status_code == 302
    assert urlsplit(ok["Location"]).netloc == "alpha.localhost"
    events = list(
        AuditEvent.objects.filter(
            action__startswith="auth.", target_id__in=[user.email, str(user.pk)]
        ).order_by("id")
    )
    assert [(e.action, e.target_id) for e in events] == [
        ("auth.login_failed", "owner@alpha.test"),
        ("auth.login", str(user.pk)),
    ]
    assert events[0].details == {"email": "owner@alpha.test", "reason": "bad_credentials"}
    assert events[0].actor_type == "system"


def test_a_user_of_several_stores_gets_the_store_list(alpha, beta, public_client):
    user = _verified_user("two@x.test", alpha)
    MembershipFactory(user=user, tenant=beta, role="analyst")

    ok = public_client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    stores = public_client.get("/stores/")

    assert ok["Location"] == "http://localhost/stores/"
    assert [m for m in ("Alpha Store", "Beta Store") if m in stores.content.decode()] == [
        "Alpha Store",
        "Beta Store",
    ]


def test_a_handoff_link_works_once_and_only_on_its_store(alpha, beta, public_client, store_client):
    user = _verified_user("once@x.test", alpha)
    public_client.force_login(user)
    location = public_client.get("/stores/alpha/go/?next=/team/")["Location"]

    _, first = _follow_handoff(store_client, alpha, location)
    _, replay = _follow_handoff(store_client, alpha, location)
    foreign = store_client(beta).get(
        "/accounts/handoff/", {"token": parse_qs(urlsplit(location).query)["token"][0]}
    )

    assert (first.status_code, first["Location"]) == (302, "/team/")
    assert replay.status_code == 400
    assert foreign.status_code == 400
    assert public_client.get("/stores/beta/go/").status_code == 404


def _totp_code(secret: str) -> str:
    from allauth.mfa.totp.internal.auth import (
        format_hotp_value,
        hotp_value,
        yield_hotp_counters_from_time,
    )

    return format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))


def test_totp_on_and_off_are_audited_once_each(
    alpha, public_client, django_capture_on_commit_callbacks
):
    user = _verified_user("mfa@x.test", alpha)
    public_client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})

    # allauth asks for the password again before MFA changes.
    public_client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    public_client.get("/accounts/2fa/totp/activate/")
    secret = public_client.session["mfa.totp.secret"]
    # allauth announces an activation on commit.
    with django_capture_on_commit_callbacks(execute=True):
        activated = public_client.post("/accounts/2fa/totp/activate/", {"code": _totp_code(secret)})
    deactivated = public_client.post("/accounts/2fa/totp/deactivate/")

    assert activated.status_code == 302
    assert deactivated.status_code == 302
    actions = list(
        AuditEvent.objects.filter(action__startswith="mfa.", actor_user_id=user.pk)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "mfa.enabled",
        "mfa.recovery_codes_created",
        "mfa.disabled",
        "mfa.recovery_codes_removed",
    ]
