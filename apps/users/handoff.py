"""One-time signed login hand-off from the public site to a store host.

Why: sign-in (with MFA) happens once, on BASE_DOMAIN; browsers refuse a cookie scoped to
".localhost", and a store may later be served on a domain of its own, so a session cookie
cannot simply be shared. The public site, where the user is signed in, redirects to
`<store>/accounts/handoff/?token=...`; the store host checks the signature (60 s), that the
token names this store, that it was never used (Redis SET NX) and that the user is a member,
then starts its own session. With SESSION_COOKIE_DOMAIN set, the hand-off is a no-op.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import redis
from django.conf import settings
from django.core import signing

from apps.core.cache import redis_client, tenant_key
from apps.core.errors import ApplicationError
from apps.tenants.models import Tenant
from apps.tenants.selectors import store_url
from apps.users.models import User

HANDOFF_SALT = "shelfsense.users.handoff"


def handoff_url(*, user: User, tenant: Tenant, next_path: str = "/") -> str:
    token = signing.dumps(
        {
            "u": user.pk,
            "t": tenant.slug,
            "n": secrets.token_urlsafe(16),
            "h": user.get_session_auth_hash(),
        },
        salt=HANDOFF_SALT,
    )
    if not next_path.startswith("/") or next_path.startswith("//"):
        next_path = "/"
    return store_url(tenant, "/accounts/handoff/?" + urlencode({"token": token, "next": next_path}))


def handoff_consume(*, token: str, tenant: Tenant) -> User:
    """The user a hand-off token names, once. Raises ApplicationError 400 for a bad, expired,
    reused or foreign token."""
    invalid = ApplicationError(
        "This sign-in link is invalid or expired. Sign in again.", code="handoff_invalid"
    )
    try:
        payload = signing.loads(
            token, salt=HANDOFF_SALT, max_age=settings.LOGIN_HANDOFF_MAX_AGE_SECONDS
        )
    except signing.BadSignature as exc:
        raise invalid from exc
    if payload.get("t") != tenant.slug:
        raise invalid
    try:
        fresh = redis_client().set(
            tenant_key("handoff", payload["n"], schema_name=tenant.schema_name),
            1,
            nx=True,
            ex=settings.LOGIN_HANDOFF_MAX_AGE_SECONDS * 2,
        )
    except redis.RedisError as exc:
        raise ApplicationError(
            "Sign-in is briefly unavailable.", code="unavailable", status_code=503
        ) from exc
    if not fresh:
        raise invalid
    user = User.objects.filter(pk=payload["u"], is_active=True).first()
    # A password change since the link was made (session hash differs) voids it.
    if user is None or user.get_session_auth_hash() != payload.get("h"):
        raise invalid
    return user
