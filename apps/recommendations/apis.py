"""Recommendation API (scope `recommend`) and model / experiment management (scope `manage`),
on the store's host.

The list endpoints parse their few query parameters by hand and answer with pre-encoded JSON:
they are the serving hot path, where a serializer per request costs more than the cache read.
Management endpoints use serializers as usual.
"""

from __future__ import annotations

import functools

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
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
from apps.recommendations import selectors, services, serving
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


class ManageApi(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [RequireScope("manage")]


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
class ModelVersionOutput(serializers.Serializer):
    number = serializers.IntegerField()
    model_version = serializers.CharField(source="label")
    status = serializers.CharField()
    strategy = serializers.CharField()
    counts = serializers.JSONField()
    metrics = serializers.JSONField()
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    started_by = serializers.CharField(source="started_by_label")
    error = serializers.CharField()
    activation_note = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField()


class ModelVersionListApi(ManageApi):
    @extend_schema(
        operation_id="models_list",
        responses=inline_serializer("ModelVersionList", {"results": ModelVersionOutput(many=True)}),
    )
    def get(self, request):
        versions = selectors.model_version_list()[:50]
        return Response({"results": ModelVersionOutput(versions, many=True).data})


class ModelTrainApi(ManageApi):
    @extend_schema(operation_id="models_train", request=None, responses={202: ModelVersionOutput})
    def post(self, request):
        version = services.model_version_start(
            actor_label=f"{services.API_KEY_LABEL_PREFIX}{request.auth.prefix}",
            request=request,
        )
        return Response(ModelVersionOutput(version).data, status=status.HTTP_202_ACCEPTED)


class ModelActivateApi(ManageApi):
    @extend_schema(operation_id="models_activate", request=None, responses=ModelVersionOutput)
    def post(self, request, number: int):
        version = services.model_version_activate(
            version=selectors.model_version_get(number=number),
            actor_api_key=request.auth,
            request=request,
        )
        return Response(ModelVersionOutput(version).data)


class ModelRollbackApi(ManageApi):
    @extend_schema(operation_id="models_rollback", request=None, responses=ModelVersionOutput)
    def post(self, request):
        version = services.model_version_rollback(actor_api_key=request.auth, request=request)
        return Response(ModelVersionOutput(version).data)


# --- experiments -------------------------------------------------------------------------------
class ArmOutput(serializers.Serializer):
    name = serializers.CharField()
    traffic_percent = serializers.IntegerField()
    strategy = serializers.CharField()
    model_version = serializers.SerializerMethodField()

    def get_model_version(self, arm) -> str | None:
        return arm.model_version.label if arm.model_version_id else None


class ExperimentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    stopped_at = serializers.DateTimeField()
    arms = ArmOutput(many=True)


class ExperimentListApi(ManageApi):
    @extend_schema_serializer(component_name="ExperimentInput")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        arms = serializers.ListField(child=serializers.DictField(), min_length=2, max_length=10)

    @extend_schema(
        operation_id="experiments_list",
        responses=inline_serializer("ExperimentList", {"results": ExperimentOutput(many=True)}),
    )
    def get(self, request):
        experiments = selectors.experiment_list()[:50]
        return Response({"results": ExperimentOutput(experiments, many=True).data})

    @extend_schema(
        operation_id="experiments_create",
        request=InputSerializer,
        responses={201: ExperimentOutput},
        description=(
            "2 to 10 arms of {name, traffic_percent (summing to 100), strategy (model, trending,"
            " popularity) or model_version}; the first is the control."
        ),
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        experiment = services.experiment_create(
            name=data.validated_data["name"],
            arms=data.validated_data["arms"],
            actor_api_key=request.auth,
            request=request,
        )
        experiment = selectors.experiment_get(experiment_id=experiment.pk)
        return Response(ExperimentOutput(experiment).data, status=status.HTTP_201_CREATED)


class ExperimentDetailApi(ManageApi):
    @extend_schema(operation_id="experiments_get", responses=ExperimentOutput)
    def get(self, request, experiment_id: int):
        experiment = selectors.experiment_get(experiment_id=experiment_id)
        return Response(ExperimentOutput(experiment).data)


class ExperimentStopApi(ManageApi):
    @extend_schema(operation_id="experiments_stop", request=None, responses=ExperimentOutput)
    def post(self, request, experiment_id: int):
        experiment = services.experiment_stop(
            experiment=selectors.experiment_get(experiment_id=experiment_id),
            actor_api_key=request.auth,
            request=request,
        )
        experiment = selectors.experiment_get(experiment_id=experiment.pk)
        return Response(ExperimentOutput(experiment).data)


class ExperimentResultsApi(ManageApi):
    @extend_schema(operation_id="experiments_results", responses=OpenApiTypes.OBJECT)
    def get(self, request, experiment_id: int):
        experiment = selectors.experiment_get(experiment_id=experiment_id)
        return Response(selectors.experiment_results(experiment=experiment))


# --- analytics ---------------------------------------------------------------------------------
class AnalyticsDayOutput(serializers.Serializer):
    date = serializers.DateField()
    lists_served = serializers.IntegerField()
    clicks = serializers.IntegerField(help_text="Lists served with an attributed click.")
    ctr = serializers.FloatField()
    conversions = serializers.IntegerField(help_text="Lists served with an attributed purchase.")
    conversion_rate = serializers.FloatField()
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=False)


class AnalyticsSummaryOutput(serializers.Serializer):
    days = serializers.IntegerField()
    lists_served = serializers.IntegerField()
    clicks = serializers.IntegerField(help_text="Lists served with an attributed click.")
    ctr = serializers.FloatField(help_text="clicks / lists_served (0 without lists).")
    conversions = serializers.IntegerField(help_text="Lists served with an attributed purchase.")
    conversion_rate = serializers.FloatField(help_text="conversions / lists_served.")
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=False)
    currency = serializers.CharField(help_text="The store's ISO 4217 currency code.")
    by_day = AnalyticsDayOutput(many=True)


def _days(query) -> int:
    raw = query.get("days")
    if raw is None or raw == "":
        return 7
    try:
        return int(raw)
    except ValueError:
        raise _invalid("days", "A whole number is required.") from None


class AnalyticsSummaryApi(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [RequireScope.any()]

    @extend_schema(
        operation_id="analytics_summary",
        parameters=[
            OpenApiParameter(
                "days",
                int,
                description=(
                    f"UTC days, today included: 1-{selectors.ANALYTICS_MAX_DAYS}, default 7."
                ),
            )
        ],
        responses=AnalyticsSummaryOutput,
        description=(
            "Recommendation outcomes of the store (any key scope). A list is served when its "
            "impression is logged; a click or purchase is attributed to it when the event "
            "carries its recommendation_id, is of an item in the list, by the shopper it was "
            "served to, within 7 days after serving. `clicks` / `conversions` count lists with "
            "at least one attributed click / purchase; CTR and conversion rate divide them by "
            "the lists served. Revenue: each attributed purchase's `value`, else the item's "
            "price when the purchase was received. Days bucket lists by serving time, clicks "
            "and conversions by the list's first attributed click / purchase, revenue by "
            "purchase time; only lists served in the window count."
        ),
    )
    def get(self, request):
        summary = selectors.analytics_summary(
            days=_days(request.query_params), currency=request.tenant.currency
        )
        return Response(AnalyticsSummaryOutput(summary).data)
