"""Production settings: `manage.py check --deploy` finds nothing, with no check silenced, and
production refuses to start without a delivering email backend (issue 13)."""

import os
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings

MANAGE = str(settings.BASE_DIR / "manage.py")


def _production_env(**overrides: str) -> dict[str, str]:
    """What production requires, and nothing of the caller's HTTPS or email switches."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SECURE_", "EMAIL_", "SESSION_COOKIE_", "DJANGO_", "DEBUG"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="shelfsense.example.com,.shelfsense.example.com",
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x"),
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        EMAIL_URL="smtp+tls://mailer:secret@smtp.example.com:587",
        PII_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
    )
    env.update(overrides)
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 (our own manage.py, fixed arguments)
        [sys.executable, MANAGE, *args],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_with_production_settings_finds_nothing():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_production_hardens_https_by_default():
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
        "s.SECURE_HSTS_PRELOAD, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_REDIRECT_EXEMPT, s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS)"
    )

    result = _manage("shell", "--no-imports", "-c", code, env=_production_env())

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "True 31536000 True True True True ['^healthz$', '^readyz$', '^metrics$'] "
        "django.core.mail.backends.smtp.EmailBackend smtp.example.com 587 True"
    )


@pytest.mark.parametrize(
    "email",
    [
        {"EMAIL_URL": ""},
        {"EMAIL_URL": "consolemail://"},
        {"EMAIL_URL": "", "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
    ],
)
def test_production_refuses_to_start_without_a_delivering_email_backend(email):
    result = _manage("check", env=_production_env(**email))

    assert result.returncode != 0
    assert "which delivers no email: set EMAIL_URL" in result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_over_plain_http_with_the_ssl_redirect_on(client, settings, path):
    settings.SECURE_SSL_REDIRECT = True

    probe = client.get(path, HTTP_HOST="10.0.0.7")
    page = client.get("/", HTTP_HOST="localhost")

    assert probe.status_code == 200
    assert page.status_code == 301
    assert page["Location"] == "https://localhost/"
