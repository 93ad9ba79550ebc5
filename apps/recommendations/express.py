"""The express lane: the recommendation lists (`GET /api/v1/recommendations/users/{id}`, the
platform's most frequent request, and the other list endpoints) dispatched straight to their
views, past the middleware that has nothing to do for them and past URL resolution.

Why: on a cached list, the full chain and the resolver cost about a fifth of the request's CPU
in process (bench/serving_profile.py): twenty middleware calls, most of which step aside for a
cookieless API request, two Host validations and a walk through the store's URL patterns. And
the answer goes back as a one-item list, which granian writes from Rust at once, where Django's
response object is pulled through Python chunk by chunk: under the load of bench/serving.py
--protocol issue15, a quarter of the server's Python time went there.

The lane decides nothing itself. It takes a request only when every middleware it leaves out
would have passed it on unchanged (see SKIPPED: why each one has nothing to do), and runs the
ones that act (KEPT, in settings order, the same classes) around the same view function the
URL resolver would have called, through Django's own WSGI handler (signals, error handling,
logging of 4xx/5xx answers). The view authenticates, checks the scope, validates the query
and answers exactly as it does behind the full chain; tests/recommendations/test_express.py
replays requests through both and compares the answers.

What it needs to know before taking a request, all read from the environ without side
effects: a GET on a list path (ROUTES) whose id is one segment of printable ASCII, no cookie
(the session, authentication and membership middleware step aside for cookieless API calls),
no Origin (CORS acts only with one), and a Host whose store is in this process's host cache
(filled by TenantMiddleware on an earlier request; the same cache, so the same store and the
same expiry) and active. Anything else goes through the full chain, as before.

A middleware added to settings.MIDDLEWARE that this module does not list turns the lane off
(with a warning at start-up): whether it must run for a serving request is a decision to make
here, not a default. SERVING_EXPRESS_LANE=false turns it off too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.utils.module_loading import import_string

from apps.recommendations import apis
from apps.tenants.hosts import tenant_host_cached
from apps.tenants.selectors import hostname_normalize

logger = logging.getLogger(__name__)

# The middleware that act on a served list, run in settings order around the view.
KEPT = frozenset(
    {
        "apps.core.log_context.RequestIdMiddleware",
        "apps.core.metrics.RequestMetricsMiddleware",
        "apps.notifications.middleware.ApiUsageMiddleware",
        "apps.core.middleware.RequestInputMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "apps.core.middleware.CommonMiddleware",
        "apps.core.middleware.AuthenticationMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    }
)
# The middleware left out, and why each has nothing to do for a request the lane takes.
SKIPPED = {
    "apps.core.middleware.ProbeMiddleware": "answers /healthz, /readyz and /metrics only",
    "apps.tenants.middleware.TenantMiddleware": (
        "the lane sets the store it resolved from the same host cache"
    ),
    "apps.apikeys.publishable.PublishableCorsMiddleware": "acts only on requests with an Origin",
    "apps.tenants.middleware.SuspendedTenantMiddleware": "the lane takes active stores only",
    "whitenoise.middleware.WhiteNoiseMiddleware": "serves static paths only",
    "apps.core.middleware.ApiNotFoundMiddleware": (
        "rewrites non-JSON 404s and 405s; the view answers JSON, errors included"
    ),
    "apps.core.middleware.SessionMiddleware": "steps aside for cookieless API requests",
    "django.middleware.csrf.CsrfViewMiddleware": (
        "the view is csrf_exempt, and a cookieless request has no token to rotate"
    ),
    "allauth.account.middleware.AccountMiddleware": (
        "sets allauth's request context, which only allauth's views read; "
        "redirects only a 404 under /accounts/"
    ),
    "apps.users.middleware.StoreMembershipMiddleware": (
        "passes on an anonymous request to an API path"
    ),
    "apps.core.middleware.MessageMiddleware": "steps aside for cookieless API requests",
}

_PREFIX = "/api/v1/recommendations/"
_ID = r"([!-.0-~]+)"  # one path segment of printable ASCII ("/" excluded)
# (path after _PREFIX, view, name of the id's view argument): the list routes of
# apps/recommendations/urls.py, for ids without "/" (an id with one goes through the resolver).
ROUTES = tuple(
    (re.compile(pattern), view.as_view(), argument)
    for pattern, view, argument in (
        (f"users/{_ID}", apis.ShopperRecommendationsApi, "user_id"),
        (f"users/{_ID}/buy-again", apis.BuyAgainApi, "user_id"),
        (f"items/{_ID}/similar", apis.SimilarItemsApi, "item_id"),
        (f"items/{_ID}/bought-together", apis.BoughtTogetherApi, "item_id"),
        (f"sessions/{_ID}", apis.SessionRecommendationsApi, "session_id"),
        ("trending", apis.TrendingApi, None),
    )
)
_TENANT = "shelfsense.express.tenant"
_VIEW = "shelfsense.express.view"

WSGIApplication = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def express_takes(environ: dict[str, Any]) -> bool:
    """Whether the lane answers this request; when it does, the store, the view and its
    arguments are left in the environ for the handler. No side effects."""
    path = environ.get("PATH_INFO", "")
    if (
        environ.get("REQUEST_METHOD") != "GET"
        or not path.startswith(_PREFIX)
        or environ.get("SCRIPT_NAME")
        or environ.get("HTTP_COOKIE")
        or environ.get("HTTP_ORIGIN")
    ):
        return False
    view = _route(path[len(_PREFIX) :])
    if view is None:
        return False
    if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in environ:
        return False
    # TenantMiddleware's name for the host (request.get_host() accepts every name this does).
    tenant = tenant_host_cached(hostname_normalize(environ.get("HTTP_HOST", "")))
    if tenant is None or tenant.is_public or not tenant.is_active:
        return False
    environ[_TENANT] = tenant
    environ[_VIEW] = view
    return True


def _route(path: str) -> tuple[Callable[..., Any], dict[str, str]] | None:
    for pattern, view, argument in ROUTES:
        match = pattern.fullmatch(path)
        if match is not None:
            return view, ({argument: match.group(1)} if argument else {})
    return None


class ExpressHandler(WSGIHandler):
    """Django's WSGI handler with the KEPT middleware around the list views."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(settings.MIDDLEWARE):
            if path in KEPT:
                handler = convert_exception_to_response(import_string(path)(handler))
            elif path == "apps.tenants.middleware.TenantMiddleware":
                handler = convert_exception_to_response(_with_store(handler))
        self._middleware_chain = handler

    def __call__(self, environ, start_response):
        response = super().__call__(environ, start_response)
        if response.streaming:
            return response
        # The body as one bytes object in a list, and the response closed here (what the
        # server would do after sending it: request_finished, connections back to the pool).
        # granian writes a list from Rust in one go, while an iterable response is pulled
        # chunk by chunk through Python: about a quarter of a served list's CPU under load.
        try:
            return [response.content]
        finally:
            response.close()

    def _get_response(self, request):
        view, arguments = request.META[_VIEW]
        response = view(request, **arguments)
        # DRF's error answers are rendered as Django's handler renders any response.
        render = getattr(response, "render", None)
        if callable(render):
            response = render()
        return response


def _with_store(get_response):
    def middleware(request):
        # What TenantMiddleware does for a store host (its URL routing is the default one).
        request.tenant = request.META[_TENANT]
        connection.set_tenant(request.tenant)
        return get_response(request)

    return middleware


def express_lane(django_application: WSGIApplication) -> WSGIApplication:
    """`django_application` with the lane in front, or as it is when the lane is off."""
    if not settings.SERVING_EXPRESS_LANE:
        return django_application
    unknown = [path for path in settings.MIDDLEWARE if path not in KEPT and path not in SKIPPED]
    if unknown:
        logger.warning(
            "Serving express lane off: apps.recommendations.express does not know %s",
            ", ".join(unknown),
        )
        return django_application
    express = ExpressHandler()

    def application(environ: dict[str, Any], start_response: Callable[..., Any]):
        if express_takes(environ):
            return express(environ, start_response)
        return django_application(environ, start_response)

    return application
