"""Recommendation lists (scope `recommend`, or a publishable key) on the store's host; model,
experiment and analytics management is apps.recommendations.manage_apis.

The list endpoints parse their few query parameters by hand and answer with pre-encoded JSON:
they are the serving hot path, where a serializer per request costs more than the cache read.
Management endpoints use serializers as usual.
"""

from __future__ import annotations

import functools

from django.http import HttpResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from apps.apikeys.authentication import ApiKeyAuthentication
from apps.apikeys.permissions import RequireScope
from apps.apikeys.publishable import (
    PublishableAnonymous,
    PublishableAsShopper,
    PublishableKeyAuthentication,
)
from apps.core.errors import ApplicationError
from apps.core.ids import id_lookup
from apps.core.params import bool_param
from apps.core.redis_batch import request_batch
from apps.merchandising import placing
from apps.merchandising.apis import RULE_PARAMETERS
from apps.recommendations import serving
from apps.recommendations.serving import LIST_SIZE, Filters
from apps.recommendations.serving.session import recommend_for_session

_RENDERER = JSONRenderer()


def _invalid(name: str, message: str) -> ApplicationError:
    return ApplicationError(f"Invalid input in: {name}.", fields={name: [message]})


def _k(query) -> int:
    raw = query.get("k")
    if raw is None or raw == "":
        return 10
    try:
        k = int(raw)
    except ValueError:
        raise _invalid("k", "A whole number is required.") from None
    if k < 1:
        raise _invalid("k", "Must be at least 1.")
    if k > LIST_SIZE:
        raise _invalid("k", f"Must be at most {LIST_SIZE}.")
    return k


def _filters(query) -> Filters:
    category = query.get("category") or None
    if category is not None and len(category) > 200:
        raise _invalid("category", "At most 200 characters.")
    return Filters(
        k=_k(query), category=category, in_stock=bool_param(query, "in_stock", default=True)
    )


def _id(value: str, name: str) -> str:
    return id_lookup(value, field=name)


def _json(served: serving.Served) -> HttpResponse:
    return HttpResponse(served.json(), content_type="application/json")


def _serve(request, scenario: str, recommend, **subject: str) -> HttpResponse:
    """A list endpoint's answer: `recommend(filters, log)` as is, or with the placement,
    rules or explanations the query asks for applied (apps.merchandising.placing)."""
    query = request.GET
    if not placing.wants_rules(query):
        return _json(recommend(_filters(query), True))
    k, in_stock = _k(query), bool_param(query, "in_stock", default=True)
    body = placing.serve_json(
        placing.plan_from_query(query),
        recommend,
        scenario=scenario,
        k=k,
        in_stock=in_stock,
        request=request,
        **subject,
    )
    return HttpResponse(body, content_type="application/json")


# --- OpenAPI -----------------------------------------------------------------------------------
_SERVED = inline_serializer(
    "RecommendationList",
    {
        "recommendation_id": serializers.CharField(),
        "model_version": serializers.CharField(),
        "strategy": serializers.CharField(),
        "items": inline_serializer(
            "RecommendedItem",
            {
                "item_id": serializers.CharField(),
                "score": serializers.FloatField(),
                "reason": serializers.JSONField(
                    required=False,
                    help_text="With explain=true: {type, ...} (apps.merchandising.explain).",
                ),
            },
            many=True,
        ),
        "placement": serializers.CharField(
            required=False,
            allow_null=True,
            help_text="Present when placement, rules or explain were asked for.",
        ),
    },
)
_FILTERS = [
    OpenApiParameter("k", int, description=f"1-{LIST_SIZE}, default 10."),
    OpenApiParameter(
        "category", str, description="Only items of this category (repeat: any of several)."
    ),
    OpenApiParameter("in_stock", bool, description="Only items in stock (default true)."),
    *RULE_PARAMETERS,
]
_EXCLUDE_SEEN = OpenApiParameter("exclude_seen", bool, description="Leave out seen (default true).")


def _serving_schema(operation_id: str, *parameters: OpenApiParameter):
    return extend_schema(
        operation_id=operation_id, parameters=[*parameters, *_FILTERS], responses=_SERVED
    )


class RecommendApi(APIView):
    """The serving endpoints. Declared and documented as DRF views, but a GET is dispatched
    without DRF's per-request machinery (Request wrapper, content negotiation, response
    finalisation), which measured ~75 µs of a ~400 µs cached request: the view's own
    authenticators and permissions run on the Django request, and any refusal or error is
    answered by DRF's `handle_exception`, so the responses are the ones APIView gives. Other
    methods go through APIView.dispatch."""

    # A publishable key (the browser SDK) gets the anonymous lists; the shopper lists below
    # need its user token too (apps.apikeys.publishable).
    authentication_classes = [PublishableKeyAuthentication, ApiKeyAuthentication]
    permission_classes = [RequireScope("recommend") | PublishableAnonymous]

    @classmethod
    def as_view(cls, **initkwargs):
        drf_view = super().as_view(**initkwargs)

        def view(request, *args, **kwargs):
            if request.method != "GET":
                return drf_view(request, *args, **kwargs)
            return cls(**initkwargs).dispatch_get(request, *args, **kwargs)

        # Keep what Django, DRF and drf-spectacular read off the view (view_class, cls,
        # initkwargs, csrf_exempt, name, docstring).
        functools.update_wrapper(view, drf_view)
        return view

    def before_authentication(self, request, **kwargs) -> None:
        """Hook: queue Redis reads in the request's batch, to share the key gate's round trip."""

    def dispatch_get(self, request, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        try:
            placing.prefetch(request, kwargs)
            self.before_authentication(request, **kwargs)
            for authenticator in self.get_authenticators():
                identity = authenticator.authenticate(request)
                if identity is not None:
                    break
            else:
                raise exceptions.NotAuthenticated()
            request.auth = identity[1]
            for permission in self.get_permissions():
                if not permission.has_permission(request, self):
                    # What APIView.permission_denied raises for an authenticated request.
                    raise exceptions.PermissionDenied(
                        getattr(permission, "message", None), getattr(permission, "code", None)
                    )
            return self.get(request, *args, **kwargs)
        except Exception as exc:
            self.request = self.initialize_request(request, *args, **kwargs)
            # What APIView.initial sets before a handler runs: handle_exception reads it
            # (with DEBUG on, an unexpected error is re-raised through it) and so does
            # finalize_response.
            negotiated = self.perform_content_negotiation(self.request)
            self.request.accepted_renderer, self.request.accepted_media_type = negotiated
            self.headers = self.default_response_headers
            response = self.handle_exception(exc)
            return self.finalize_response(self.request, response, *args, **kwargs)

    def perform_content_negotiation(self, request, force=False):
        # JSON is the only representation.
        return _RENDERER, _RENDERER.media_type

    def initial(self, request, *args, **kwargs):
        self.before_authentication(request._request, **kwargs)
        super().initial(request, *args, **kwargs)


class ShopperRecommendationsApi(RecommendApi):
    permission_classes = [RequireScope("recommend") | PublishableAsShopper]
    prefetch: serving.ShopperPrefetch | None = None

    def before_authentication(self, request, user_id: str = "", **kwargs) -> None:
        # Input errors are left to get(), after authentication, so an unauthenticated request
        # still gets its 401 first.
        try:
            exclude_seen = bool_param(request.GET, "exclude_seen", default=True)
            user_id = _id(user_id, "user_id")
        except ApplicationError:
            return
        self.prefetch = serving.shopper_prefetch(
            batch=request_batch(request), user_id=user_id, exclude_seen=exclude_seen
        )

    @_serving_schema("recommendations_for_shopper", _EXCLUDE_SEEN)
    def get(self, request, user_id: str):
        query, user_id = request.GET, _id(user_id, "user_id")
        exclude_seen = bool_param(query, "exclude_seen", default=True)

        def recommend(filters: Filters, log: bool) -> serving.Served:
            return serving.recommend_for_shopper(
                user_id=user_id,
                filters=filters,
                exclude_seen=exclude_seen,
                log=log,
                prefetch=self.prefetch,
            )

        return _serve(request, "personal", recommend, user_id=user_id)


class SessionRecommendationsApi(RecommendApi):
    @_serving_schema("recommendations_for_session", _EXCLUDE_SEEN)
    def get(self, request, session_id: str):
        query, session_id = request.GET, _id(session_id, "session_id")
        seen = bool_param(query, "exclude_seen", default=True)

        def recommend(filters: Filters, log: bool) -> serving.Served:
            return recommend_for_session(
                session_id=session_id, filters=filters, exclude_seen=seen, log=log
            )

        return _serve(request, "session", recommend, session_id=session_id)


class BuyAgainApi(RecommendApi):
    permission_classes = [RequireScope("recommend") | PublishableAsShopper]

    @_serving_schema("recommendations_buy_again")
    def get(self, request, user_id: str):
        user_id = _id(user_id, "user_id")

        def recommend(filters: Filters, log: bool) -> serving.Served:
            return serving.recommend_buy_again(user_id=user_id, filters=filters, log=log)

        return _serve(request, "buy-again", recommend, user_id=user_id)


class SimilarItemsApi(RecommendApi):
    kind = "similar"
    scenario = "similar"

    @_serving_schema("recommendations_similar")
    def get(self, request, item_id: str):
        item_id = _id(item_id, "item_id")

        def recommend(filters: Filters, log: bool) -> serving.Served:
            return serving.recommend_for_item(
                item_id=item_id, kind=self.kind, filters=filters, log=log
            )

        return _serve(request, self.scenario, recommend, item_id=item_id)


class BoughtTogetherApi(SimilarItemsApi):
    kind = "bought_together"
    scenario = "bought-together"

    @_serving_schema("recommendations_bought_together")
    def get(self, request, item_id: str):
        return super().get(request, item_id)


class TrendingApi(RecommendApi):
    @_serving_schema("recommendations_trending")
    def get(self, request):
        def recommend(filters: Filters, log: bool) -> serving.Served:
            return serving.recommend_trending(filters=filters, log=log)

        return _serve(request, "trending", recommend)


# --- models ------------------------------------------------------------------------------------
