"""`make run`'s bootstrap_local: the demo owner login it prints signs in and lands on the demo
store's dashboard (no "Verify your email address" stop)."""

from __future__ import annotations

import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command

from apps.tenants.models import Tenant
from apps.users.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def logins_dir(settings, tmp_path):
    """The logins file goes to a temporary folder, not the checkout's .data/."""
    settings.BASE_DIR = tmp_path
    return tmp_path


def _printed_logins(output: str) -> list[tuple[str, str]]:
    return re.findall(r"login\s+(\S+) / (\S+)", output)


def test_printed_demo_owner_login_lands_on_the_demo_dashboard(
    logins_dir, public_client, store_client
):
    # given: bootstrap_local has run as `make run` runs it
    out = io.StringIO()
    call_command("bootstrap_local", stdout=out)
    (operator_email, _), (owner_email, owner_password) = _printed_logins(out.getvalue())

    # when: the demo owner signs in with the printed login on the public site
    response = public_client.post(
        "/accounts/login/", {"login": owner_email, "password": owner_password}
    )

    # then: straight to the demo store's one-time hand-off, and from there its dashboard
    assert response.status_code == 302
    handoff = urlsplit(response["Location"])
    assert (handoff.netloc, handoff.path) == ("demo.localhost", "/accounts/handoff/")
    demo = Tenant.objects.get(slug="demo")
    client = store_client(demo)
    landed = client.get(handoff.path, {k: v[0] for k, v in parse_qs(handoff.query).items()})
    assert (landed.status_code, landed["Location"]) == (302, "/")
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert "Demo Store" in dashboard.content.decode()
    for email in (operator_email, owner_email):
        user = User.objects.get(email=email)
        assert list(
            EmailAddress.objects.filter(user=user).values_list("email", "verified", "primary")
        ) == [(email, True, True)]


def test_second_run_prints_the_same_logins_and_keeps_one_verified_address(logins_dir):
    first, second = io.StringIO(), io.StringIO()
    call_command("bootstrap_local", stdout=first)
    call_command("bootstrap_local", stdout=second)

    assert _printed_logins(second.getvalue()) == _printed_logins(first.getvalue())
    owner_email = _printed_logins(first.getvalue())[1][0]
    assert list(
        EmailAddress.objects.filter(email=owner_email).values_list("verified", "primary")
    ) == [(True, True)]
