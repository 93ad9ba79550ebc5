"""Publishable keys (`ss_pub_<prefix>_<secret>`): the key a storefront ships to browsers with
the SDK (static/sdk/v1/shelfsense.js).

What a publishable key may do, and nothing else:
- alone, act for an anonymous browsing session: track its events (`session_id`, no
  `user_id`) and fetch session, trending, similar and bought-together lists;
- with a **user token** (`X-ShelfSense-User-Token`), which the store's backend signs for one
  shopper with the store's identity verification secret, also act for that shopper: track
  events as them and fetch their personal and buy-again lists. A visitor cannot forge a token,
  so they can never read or write another shopper's history.

Every request must come from one of the key's allowed origins (the `Origin` header browsers
set; a request without one is refused), is counted against two fixed windows in Redis (per key
and per client address, both tenant-prefixed, in the request's one Redis round trip) and is
answered 429 with Retry-After past either. CORS: `PublishableCorsMiddleware` answers
preflights for the SDK's paths from the union of the store's active keys' origins (a preflight
carries no key), and marks the answers readable by those origins; the key's own list is then
checked here, per request.

User token: `<base64url(user_id)>.<expiry, unix seconds>.<base64url(HMAC-SHA256(secret,
"<base64url(user_id)>.<expiry>"))>`, no padding; the expiry at most USER_TOKEN_MAX_SECONDS
ahead. `user_token_sign` is the reference implementation (README has the same in a few lines of
Python and Node for stores' backends). The secret is stored encrypted, not hashed: HMAC needs
the secret itself (apps.apikeys.models.IdentitySecret).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_vary_headers
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from apps.apikeys import cache, publishable_cache
from apps.apikeys.authentication import parse_rate
from apps.apikeys.keys import PUBLISHABLE_MARKER, key_matches, key_prefix
from apps.apikeys.models import ApiKey
from apps.audit.services import client_ip
from apps.core.cache import tenant_key
from apps.core.errors import ApplicationError, error_body
from apps.core.ids import id_normalize
from apps.core.redis_batch import request_batch

logger = logging.getLogger(__name__)

USER_TOKEN_HEADER = "X-ShelfSense-User-Token"  # noqa: S105 (a header name)
USER_TOKEN_MAX_SECONDS = 7 * 86400
# Event types a browser may send; ratings come from the store's backend.
TRACKABLE_TYPES = frozenset({"view", "add_to_cart", "purchase", "click", "dismiss"})
MAX_EVENTS_PER_REQUEST = 100
# The paths the SDK calls (CORS applies to these only).
SDK_PATHS = ("/api/v1/recommendations/", "/api/v1/events/bulk")
CORS_MAX_AGE_SECONDS = 600


@dataclass(frozen=True)
class PublishableAccess:
    """`request.auth` of a publishable-key request: the key, the calling origin, and the
    shopper a valid user token names (None: an anonymous session only)."""

    api_key: ApiKey
    origin: str
    user_id: str | None

    @property
    def prefix(self) -> str:
        return self.api_key.prefix


# --- user tokens --------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())


def user_token_sign(*, secret: str, user_id: str, expires_at: int) -> str:
    """A user token for `user_id` valid until `expires_at` (unix seconds): what a store's
    backend computes with its identity verification secret."""
    payload = f"{_b64(user_id.encode())}.{int(expires_at)}"
    return f"{payload}.{_signature(secret.encode(), payload)}"


def _invalid_token(message: str, code: str = "invalid_user_token"):
    return exceptions.AuthenticationFailed(message, code=code)


def user_token_verify(token: str, *, secret: bytes | None, now: float | None = None) -> str:
    """The shopper id a token names. Raises AuthenticationFailed (401) `invalid_user_token`
    for a malformed or badly signed token, `user_token_expired` past its expiry, or
    `identity_verification_not_set_up` when the store has no secret yet."""
    if secret is None:
        raise _invalid_token(
            "User tokens need the store's identity verification secret: generate it on the "
            "API keys page.",
            "identity_verification_not_set_up",
        )
    encoded_user, sep, rest = token.partition(".")
    expiry, sep2, signature = rest.partition(".")
    # ASCII first: `hmac.compare_digest` refuses non-ASCII strings, and `isdigit` accepts
    # digits (superscripts) that `int` does not.
    if not (token.isascii() and sep and sep2 and encoded_user and expiry.isdigit() and signature):
        raise _invalid_token("Malformed user token.")
    if not hmac.compare_digest(signature, _signature(secret, f"{encoded_user}.{expiry}")):
        raise _invalid_token("Invalid user token signature.")
    now = time.time() if now is None else now
    if int(expiry) <= now:
        raise _invalid_token("This user token has expired.", "user_token_expired")
    if int(expiry) > now + USER_TOKEN_MAX_SECONDS:
        raise _invalid_token(
            f"A user token expires at most {USER_TOKEN_MAX_SECONDS // 86400} days ahead."
        )
    try:
        user_id = _unb64(encoded_user).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _invalid_token("Malformed user token.") from None
    return id_normalize(user_id)


# --- authentication -----------------------------------------------------------------------------
def _invalid(message: str = "Invalid publishable key.", code: str = "invalid_api_key"):
    return exceptions.AuthenticationFailed(message, code=code)


class OriginRefused(exceptions.PermissionDenied):
    default_code = "origin_not_allowed"


def _lookup(schema: str, prefix: str) -> ApiKey | None:
    hit, api_key = cache.local_get(schema, prefix)
    if hit:
        return api_key
    api_key = ApiKey.objects.filter(prefix=prefix).first()
    cache.local_put(schema, prefix, api_key)
    return api_key


def _limits() -> list[tuple[str, tuple[int, int]]]:
    limits = []
    for name, setting in (
        ("key", settings.PUBLISHABLE_KEY_RATE_LIMIT),
        ("ip", settings.PUBLISHABLE_IP_RATE_LIMIT),
    ):
        rate = parse_rate(setting)
        if rate is not None:
            limits.append((name, rate))
    return limits


def _gate(request, schema: str, api_key: ApiKey, now: float) -> tuple[bool, int, str]:
    """(revoked elsewhere, seconds to wait if over a limit else 0, which limit)."""
    commands: list[tuple] = [("EXISTS", cache.revoked_marker_key(schema, api_key.prefix))]
    limits = _limits()
    subjects = {"key": api_key.prefix, "ip": client_ip(request) or "unknown"}
    for name, (_, seconds) in limits:
        window_key = tenant_key(
            "apikey", f"pub-{name}", subjects[name], int(now // seconds), schema_name=schema
        )
        commands += [("INCR", window_key), ("EXPIRE", window_key, seconds + 1)]
    try:
        results = request_batch(request).add(*commands).result()
    except redis.RedisError:
        # As for secret keys: availability first; local expiry still ends revoked keys.
        logger.warning("publishable key gate skipped: Redis unavailable")
        return False, 0, ""
    for position, (name, (requests, seconds)) in enumerate(limits):
        if results[1 + 2 * position] > requests:
            return bool(results[0]), max(1, math.ceil(seconds - (now % seconds))), name
    return bool(results[0]), 0, ""


class PublishableKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer ss_pub_…` from an allowed origin; request.auth becomes a
    PublishableAccess. Any other Authorization header: not this authenticator's (None), so it
    comes first and ApiKeyAuthentication handles secret keys.

    401 `invalid_api_key` / `api_key_revoked` for the key, `invalid_user_token` /
    `user_token_expired` / `identity_verification_not_set_up` for the user token; 403
    `origin_not_allowed` without an Origin or from one the key does not list; 429 with
    Retry-After past the per-key or per-address rate."""

    def authenticate(self, request):
        # Ahead of ApiKeyAuthentication on the serving path: secret keys leave at this check.
        if PUBLISHABLE_MARKER not in request.META.get("HTTP_AUTHORIZATION", ""):
            return None
        header = get_authorization_header(request).decode("latin-1")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key.startswith(PUBLISHABLE_MARKER):
            return None
        prefix = key_prefix(key, PUBLISHABLE_MARKER)
        if prefix is None:
            raise _invalid("Malformed publishable key.")
        schema = connection.schema_name
        if schema == "public":
            raise _invalid("API keys are accepted on a store's host only.")
        api_key = _lookup(schema, prefix)
        if api_key is None or not key_matches(key, api_key.secret_hash):
            raise _invalid()
        if api_key.revoked_at is not None:
            raise _invalid("This API key has been revoked.", "api_key_revoked")
        origin = request.headers.get("Origin", "")
        if origin.lower() not in api_key.allowed_origins:
            raise OriginRefused(
                f"Origin {origin or '(none)'} is not allowed for this publishable key."
            )
        now = time.time()
        revoked_elsewhere, wait, limit = _gate(request, schema, api_key, now)
        if revoked_elsewhere:
            cache.local_forget(schema, prefix)
            raise _invalid("This API key has been revoked.", "api_key_revoked")
        if wait:
            subject = "this publishable key" if limit == "key" else "this client address"
            raise exceptions.Throttled(
                wait=wait, detail=f"Rate limit of {subject} exceeded; retry in {wait}s."
            )
        user_id = None
        token = request.headers.get(USER_TOKEN_HEADER, "").strip()
        if token:
            user_id = user_token_verify(
                token, secret=publishable_cache.identity_secret(schema), now=now
            )
        return AnonymousUser(), PublishableAccess(api_key=api_key, origin=origin, user_id=user_id)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


# --- permissions --------------------------------------------------------------------------------
class ShopperRefused(exceptions.PermissionDenied):
    default_code = "user_token_required"


class PublishableAnonymous(BasePermission):
    """A publishable key, with or without a user token (session, trending, item lists)."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, PublishableAccess)


class PublishableAsShopper(BasePermission):
    """A publishable key with a user token naming the shopper of the path's `user_id`."""

    def has_permission(self, request, view) -> bool:
        access = request.auth
        if not isinstance(access, PublishableAccess):
            return False
        if access.user_id is None:
            raise ShopperRefused(
                f"A shopper's list needs a user token ({USER_TOKEN_HEADER}) signed by the "
                "store's backend."
            )
        if access.user_id != id_normalize(view.kwargs.get("user_id", "")):
            raise ShopperRefused(
                "The user token is for another shopper.", code="user_token_mismatch"
            )
        return True


def events_check(rows: Any, access: PublishableAccess) -> None:
    """Refuse (ApplicationError 403, nothing stored) a batch a browser may not send: more than
    MAX_EVENTS_PER_REQUEST rows, a type outside TRACKABLE_TYPES, or a `user_id` other than the
    user token's (any `user_id` without a token). Field validation stays events_ingest's."""
    if len(rows) > MAX_EVENTS_PER_REQUEST:
        raise ApplicationError(
            f"A publishable key sends at most {MAX_EVENTS_PER_REQUEST} events per request.",
            code="too_many_events",
            fields={"events": ["too many"]},
        )
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            continue
        event_type = row.get("type")
        if isinstance(event_type, str) and event_type not in TRACKABLE_TYPES:
            raise ApplicationError(
                f"Event {index}: a publishable key tracks only "
                f"{', '.join(sorted(TRACKABLE_TYPES))}.",
                code="event_type_not_allowed",
                status_code=403,
                fields={"type": [f"row {index}: not allowed with a publishable key"]},
            )
        user_id = row.get("user_id")
        if user_id is None or user_id == "":
            continue
        if access.user_id is None or not isinstance(user_id, str):
            raise ApplicationError(
                f"Event {index}: events of a known shopper need a user token "
                f"({USER_TOKEN_HEADER}).",
                code="user_token_required",
                status_code=403,
                fields={"user_id": [f"row {index}: needs a user token"]},
            )
        if id_normalize(user_id) != access.user_id:
            raise ApplicationError(
                f"Event {index}: the user token is for another shopper.",
                code="user_token_mismatch",
                status_code=403,
                fields={"user_id": [f"row {index}: not the user token's shopper"]},
            )


# --- CORS ---------------------------------------------------------------------------------------
def _cors_headers(response: HttpResponse, origin: str) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Expose-Headers"] = "Retry-After"
    patch_vary_headers(response, ["Origin"])
    return response


class PublishableCorsMiddleware:
    """CORS for the SDK's paths on a store's host, from the store's publishable keys' allowed
    origins. A preflight (OPTIONS with Access-Control-Request-Method) is answered here: 204
    for a listed origin asking for GET or POST, else 403 `origin_not_allowed` without any
    Access-Control header. Other answers to a listed origin (errors and 429s included) carry
    Access-Control-Allow-Origin, so the SDK can read them. Goes right after the tenant
    middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        origin = request.headers.get("Origin")
        if (
            not origin
            or connection.schema_name == "public"
            or not request.path.startswith(SDK_PATHS)
        ):
            return self.get_response(request)
        allowed = origin.lower() in publishable_cache.store_origins(connection.schema_name)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            method = request.headers["Access-Control-Request-Method"].upper()
            if not allowed or method not in ("GET", "POST"):
                return JsonResponse(
                    error_body(
                        "origin_not_allowed",
                        f"Origin {origin} may not {method} here: no publishable key of this "
                        "store allows it.",
                    ),
                    status=403,
                )
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Methods"] = "GET, POST"
            response["Access-Control-Allow-Headers"] = (
                f"Authorization, Content-Type, {USER_TOKEN_HEADER}"
            )
            response["Access-Control-Max-Age"] = str(CORS_MAX_AGE_SECONDS)
            return _cors_headers(response, origin)
        response = self.get_response(request)
        if allowed:
            return _cors_headers(response, origin)
        patch_vary_headers(response, ["Origin"])
        return response
