"""Rate-limit answers of the account pages: 429 with Retry-After.

allauth refuses a login beyond the per-IP rates with its 429 page (no Retry-After), and a
locked account (the per-account `login_failed` rate) by re-showing the form with 200. These
say how long to wait, from the hit history allauth keeps in the cache. They read allauth's
internal rate-limit helpers (allauth pinned in requirements/base.txt).
"""

from __future__ import annotations

import math
import time

from allauth.account import app_settings
from allauth.core.internal import ratelimit
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

DEFAULT_RETRY_AFTER_SECONDS = 60


def retry_after_seconds(
    request: HttpRequest, *, actions: list[str] | None = None, key: str | None = None
) -> int:
    """Seconds until every exhausted rate of `actions` (all configured ones when None) has
    room again for this client (per IP) and `key` (per account, when given); the default
    when none is found exhausted."""
    config = app_settings.RATE_LIMITS
    now = time.time()
    wait = 0.0
    for action in actions if actions is not None else list(config):
        for rate in ratelimit.get_rates(app="allauth.account", action=action, config=config):
            if (rate.per == "key" and key is None) or rate.per == "user":
                continue
            cache_key = ratelimit.get_cache_key(
                request, app="allauth.account", action=action, rate=rate, key=key
            )
            history = [hit for hit in cache.get(cache_key, []) if hit > now - rate.duration]
            if len(history) >= rate.amount:
                # The oldest hit still counted leaves the window first.
                wait = max(wait, min(history) + rate.duration - now)
    return max(1, math.ceil(wait)) if wait else DEFAULT_RETRY_AFTER_SECONDS


def rate_limited(request: HttpRequest) -> HttpResponse:
    """handler429 (allauth answers its rate limits through `<ROOT_URLCONF>.handler429`):
    allauth's page, plus Retry-After."""
    response = ratelimit.handler429(request)
    response["Retry-After"] = str(retry_after_seconds(request))
    return response
