"""Login rate limits answer 429 with Retry-After (issue 13): the per-account lockout used to
re-show the form with 200, and the per-IP 429 had no Retry-After."""

import pytest
from django.core.cache import cache

from apps.audit.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
LOCKED = "Too many failed login attempts. Try again later."


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def _user(email):
    user = UserFactory(email=email, password=PASSWORD)
    user.emailaddress_set.create(email=email, verified=True, primary=True)
    return user


def test_a_locked_account_answers_429_with_retry_after_and_allauths_message(public_client):
    user = _user("locked@alpha.test")
    failures = [
        public_client.post("/accounts/login/", {"login": user.email, "password": "wrong"})
        for _ in range(5)
    ]

    locked = public_client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})

    assert [response.status_code for response in failures] == [200] * 5
    assert locked.status_code == 429
    assert 295 <= int(locked["Retry-After"]) <= 300  # 5 failures per 5 minutes per account
    assert LOCKED in locked.content.decode()
    assert "_auth_user_id" not in public_client.session
    assert not AuditEvent.objects.filter(action="auth.login", actor_user_id=user.pk).exists()


def test_the_per_ip_login_limit_answers_429_with_retry_after(public_client, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "3/m/ip"}
    answers = [
        public_client.post("/accounts/login/", {"login": "nobody@x.test", "password": "x"})
        for _ in range(4)
    ]

    assert [response.status_code for response in answers] == [200, 200, 200, 429]
    assert 55 <= int(answers[-1]["Retry-After"]) <= 60
