"""Local platform for `make run`: an operator account and a demo store with an owner.

Logins are generated once and kept in `.data/local-logins.json` (git-ignored, mode 0600), so a
second `make run` prints the same ones.
"""

import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.tenants.models import Tenant
from apps.tenants.selectors import public_url, store_url
from apps.tenants.services import tenant_create
from apps.users.models import Membership, User
from apps.users.services import user_email_verify

DEMO_SLUG = "demo"


def _logins_file() -> Path:
    return Path(settings.BASE_DIR) / ".data" / "local-logins.json"


def _load_or_create_logins() -> dict[str, dict[str, str]]:
    path = _logins_file()
    if path.exists():
        return json.loads(path.read_text())
    logins = {
        "operator": {
            "email": f"admin@{settings.BASE_DOMAIN}",
            "password": secrets.token_urlsafe(12),
        },
        "demo_owner": {
            "email": f"owner@{DEMO_SLUG}.{settings.BASE_DOMAIN}",
            "password": secrets.token_urlsafe(12),
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(logins, indent=2))
    os.chmod(path, 0o600)
    return logins


def _ensure_user(email: str, password: str, *, operator: bool) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        if operator:
            return User.objects.create_superuser(email=email, password=password)
        return User.objects.create_user(email=email, password=password)
    user.set_password(password)
    user.is_staff = user.is_superuser = operator
    user.save(update_fields=["password", "is_staff", "is_superuser"])
    return user


def _ensure_verified_user(email: str, password: str, *, operator: bool) -> User:
    # Verified and primary: the printed logins sign in straight away (allauth's verification
    # is mandatory, and nobody receives these addresses' mail).
    user = _ensure_user(email, password, operator=operator)
    user_email_verify(user=user)
    return user


class Command(BaseCommand):
    help = "Create (or refresh) the local operator login and the demo store; print URLs and logins."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        logins = _load_or_create_logins()
        operator = logins["operator"]
        owner_login = logins["demo_owner"]
        _ensure_verified_user(operator["email"], operator["password"], operator=True)
        owner = _ensure_verified_user(owner_login["email"], owner_login["password"], operator=False)

        demo = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if demo is None:
            demo = tenant_create(slug=DEMO_SLUG, name="Demo Store", owner=owner)
        Membership.objects.get_or_create(
            user=owner, tenant=demo, defaults={"role": Membership.Role.OWNER}
        )

        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("ShelfSense is starting:"))
        self.stdout.write(f"  Operators' admin  {public_url('/admin/')}")
        self.stdout.write(f"     login          {operator['email']} / {operator['password']}")
        self.stdout.write(f"  Demo store        {store_url(demo)}")
        self.stdout.write(f"     login          {owner_login['email']} / {owner_login['password']}")
        self.stdout.write(f"  Readiness         {public_url('/readyz')}")
        self.stdout.write("")
