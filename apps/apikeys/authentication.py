"""`Authorization: Bearer ss_live_<prefix>_<secret>` for the store API.

On the serving hot path, so: no database query per request (key rows are cached in-process
for API_KEY_CACHE_SECONDS), and one Redis round trip that checks for a revocation announced
by another process, counts the request in the key's rate window, and claims the once-a-minute
`last_used_at` refresh. That round trip is the request's Redis batch (apps.core.redis_batch):
a view that queued its cache read before authentication gets it answered in the same trip.
The key is looked up in the schema of the host's store only, so a key of store A on store B's
host is unknown there: 401.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime

import redis
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from apps.apikeys import cache
from apps.apikeys.keys import PUBLISHABLE_MARKER, key_matches, key_prefix
from apps.apikeys.models import ApiKey
from apps.apikeys.services import api_key_touch
from apps.core.redis_batch import RedisBatch, request_batch

logger = logging.getLogger(__name__)

LAST_USED_REFRESH_SECONDS = 60
# (schema, key prefix) -> when this process next asks Redis for the `last_used_at` refresh.
_refresh_asked: dict[tuple[str, str], float] = {}
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int] | None:
    """ "100/s", "6000/min", "1000/hour" → (requests, seconds); "" or "0/s" → None (no limit)."""
    if not rate:
        return None
    count, _, period = rate.partition("/")
    requests = int(count)
    if requests <= 0:
        return None
    return requests, _PERIODS[period.strip()[0]]


def _invalid(message: str = "Invalid API key.", code: str = "invalid_api_key"):
    return exceptions.AuthenticationFailed(message, code=code)


def _lookup(schema: str, prefix: str) -> ApiKey | None:
    hit, api_key = cache.local_get(schema, prefix)
    if hit:
        return api_key
    api_key = ApiKey.objects.filter(prefix=prefix).first()
    cache.local_put(schema, prefix, api_key)
    return api_key


def _redis_gate(
    schema: str, api_key: ApiKey, now: datetime, batch: RedisBatch
) -> tuple[bool, int, bool]:
    """(revoked elsewhere, seconds to wait if over the rate limit else 0, refresh last_used)."""
    rate = parse_rate(settings.API_KEY_RATE_LIMIT)
    now_ts = now.timestamp()

    commands: list[tuple] = [("EXISTS", cache.revoked_marker_key(schema, api_key.prefix))]
    if rate is not None:
        window_key = cache.throttle_key(schema, api_key.prefix, int(now_ts // rate[1]))
        commands += [("INCR", window_key), ("EXPIRE", window_key, rate[1] + 1)]
    # The refresh is claimed in Redis (one process a minute wins), but this process asks only
    # once a minute per key, not on every request: a command fewer on the serving hot path.
    asked_at = time.monotonic()
    claim = asked_at >= _refresh_asked.get((schema, api_key.prefix), 0.0)
    if claim:
        _refresh_asked[(schema, api_key.prefix)] = asked_at + LAST_USED_REFRESH_SECONDS
        commands.append(
            (
                "SET",
                cache.last_used_marker_key(schema, api_key.prefix),
                1,
                "NX",
                "EX",
                LAST_USED_REFRESH_SECONDS,
            )
        )

    try:
        results = batch.add(*commands).result()
    except redis.RedisError:
        # Redis down: keep serving (availability first); local expiry still ends revoked keys.
        logger.warning("API key gate skipped: Redis unavailable")
        return False, 0, False
    wait = 0
    if rate is not None and results[1] > rate[0]:
        wait = max(1, math.ceil(rate[1] - (now_ts % rate[1])))
    return bool(results[0]), wait, claim and bool(results[-1])


class ApiKeyAuthentication(BaseAuthentication):
    """Sets request.user to AnonymousUser and request.auth to the store's ApiKey.

    No Authorization header, or a non-Bearer one: not this authenticator's business (None).
    Malformed, unknown (including another store's key), revoked or expired key: 401 with codes
    `invalid_api_key`, `api_key_revoked`, `api_key_expired`. Over the key's rate: 429 with
    Retry-After.
    """

    keyword = "bearer"

    def authenticate(self, request):
        # From META: DRF's get_authorization_header builds `request.headers`, a mapping of
        # every header, on each request of the serving hot path.
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != self.keyword:
            if scheme.lower() == "token":
                raise _invalid(
                    'Send the API key as "Authorization: Bearer <API key>"; '
                    'the "Token" scheme is not accepted.',
                    "wrong_auth_scheme",
                )
            return None
        key = key.strip()
        prefix = key_prefix(key)
        if prefix is None:
            if key.startswith(PUBLISHABLE_MARKER):
                raise _invalid(
                    "Publishable keys (ss_pub_…) only track events and fetch recommendations "
                    "from a browser; use a secret key (ss_live_…) here.",
                    "publishable_key_not_allowed",
                )
            raise _invalid("Malformed API key.")
        schema = connection.schema_name
        if schema == "public":
            raise _invalid("API keys are accepted on a store's host only.")
        api_key = _lookup(schema, prefix)
        if api_key is None or not key_matches(key, api_key.secret_hash):
            raise _invalid()
        now = timezone.now()
        if api_key.revoked_at is not None:
            raise _invalid("This API key has been revoked.", "api_key_revoked")
        if api_key.is_expired(now):
            raise _invalid("This API key has expired.", "api_key_expired")
        revoked_elsewhere, wait, refresh_last_used = _redis_gate(
            schema, api_key, now, request_batch(request)
        )
        if revoked_elsewhere:
            cache.local_forget(schema, prefix)
            raise _invalid("This API key has been revoked.", "api_key_revoked")
        if refresh_last_used:
            api_key_touch(api_key_id=api_key.pk, used_at=now)
        if wait:
            raise exceptions.Throttled(
                wait=wait, detail=f"Rate limit of this API key exceeded; retry in {wait}s."
            )
        return AnonymousUser(), api_key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
