"""allauth hooks: where a signed-in user lands, and the audit of sign-ins."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django_tenants.utils import schema_context

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.tenants.selectors import public_url
from apps.users.handoff import handoff_url
from apps.users.ratelimits import retry_after_seconds
from apps.users.selectors import user_memberships


def landing_url(user) -> str:
    """One store: its dashboard (through the hand-off). Several or none: the store list."""
    memberships = list(user_memberships(user=user)[:2])
    if len(memberships) == 1:
        return handoff_url(user=user, tenant=memberships[0].tenant)
    return public_url("/stores/")


def _on_public_site(request: HttpRequest) -> bool:
    tenant = getattr(request, "tenant", None)
    return tenant is None or tenant.is_public


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return _on_public_site(request)

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        return landing_url(request.user)

    def get_signup_redirect_url(self, request: HttpRequest) -> str:
        return landing_url(request.user)

    def login(self, request: HttpRequest, user) -> None:
        super().login(request, user)
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            audit_record(
                action=AuditAction.AUTH_LOGIN,
                acting_user=user,
                target_type="user",
                target_id=str(user.pk),
                request=request,
            )

    def pre_authenticate(self, request: HttpRequest, **credentials) -> None:
        """allauth refuses a locked account (too many failed logins) with a form error; the
        login view turns that into 429 with this Retry-After."""
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            request.login_retry_after = retry_after_seconds(
                request,
                actions=["login_failed"],
                key=self._get_login_attempts_cache_key(request, **credentials),
            )
            raise

    def authentication_failed(self, request: HttpRequest, **credentials) -> None:
        super().authentication_failed(request, **credentials)
        email = str(credentials.get("email") or credentials.get("username") or "")[:254]
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            audit_record(
                action=AuditAction.AUTH_LOGIN_FAILED,
                actor_label="anonymous",
                target_type="user",
                target_id=email,
                details={"email": email, "reason": "bad_credentials"},
                request=request,
            )


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin) -> bool:
        return _on_public_site(request)
