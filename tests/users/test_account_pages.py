"""Account pages (allauth's) and the account links of every page, in the platform's layout."""

import pytest
from django.test import Client

from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_sign_in_page_is_in_the_platform_layout(public_client):
    response = public_client.get("/accounts/login/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "css/app.css" in html
    assert 'class="auth-page"' in html
    assert "Sign In · ShelfSense</title>" in html.replace("\n", "")
    assert 'href="/accounts/signup/">Create a store</a>' in html


def test_account_settings_pages_share_one_menu(public_client):
    public_client.force_login(UserFactory())

    html = public_client.get("/accounts/2fa/").content.decode()

    assert 'aria-label="Account settings"' in html
    assert '<a href="/accounts/2fa/" aria-current="page">Two-factor authentication</a>' in html
    assert 'href="/accounts/password/change/"' in html
    assert 'href="/stores/">Your stores</a>' in html


def test_signed_in_public_pages_link_security_and_sign_out(public_client):
    public_client.force_login(UserFactory())

    html = public_client.get("/stores/").content.decode()

    assert '<a href="/accounts/2fa/">Security</a>' in html
    assert html.count('href="/accounts/logout/"') == 1


def test_store_pages_sign_out_of_the_store_and_the_platform(alpha, store_client):
    user = UserFactory()
    MembershipFactory(user=user, tenant=alpha, role="analyst")
    client: Client = store_client(alpha, enforce_csrf_checks=True)
    client.force_login(user)

    page = client.get("/")
    html = page.content.decode()
    assert 'href="http://localhost/stores/">Your stores</a>' in html
    assert '<form class="inline" method="post" action="/accounts/logout/">' in html

    token = page.context["csrf_token"]
    response = client.post("/accounts/logout/", {"csrfmiddlewaretoken": str(token)})

    assert response.status_code == 302
    assert response["Location"] == "http://localhost/accounts/logout/"
    assert client.get("/").status_code == 302  # signed out of the store: back to sign-in
