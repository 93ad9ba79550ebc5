"""Recommendation API (scope `recommend`) and model / experiment management (scope `manage`),
on the store's host.

The list endpoints parse their few query parameters by hand and answer with pre-encoded JSON:
they are the serving hot path, where a serializer per request costs more than the cache read.
Management endpoints use serializers as usual.
"""

from __future__ import annotations

import functools

from django.http import HttpResponse
from rest_framework import exceptions, serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.apikeys.authentication import ApiKeyAuthentication
from apps.apikeys.permissions import RequireScope
from apps.core.errors import ApplicationError
from apps.core.redis_batch import request_batch
from apps.recommendations import selectors, services, serving
from apps.recommendations.serving import LIST_SIZE, Filters

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
ID_MAX_LENGTH = 128
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


def _flag(query, name: str, default: bool) -> bool:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _invalid(name, "Must be true or false.")


def _filters(query) -> Filters:
    category = query.get("category") or None
    if category is not None and len(category) > 200:
        raise _invalid("category", "At most 200 characters.")
    return Filters(k=_k(query), category=category, in_stock=_flag(query, "in_stock", True))


def _id(value: str, name: str) -> str:
    if not value or len(value) > ID_MAX_LENGTH:
        raise _invalid(name, f"Between 1 and {ID_MAX_LENGTH} characters.")
    return value


def _json(served: serving.Served) -> HttpResponse:
    return HttpResponse(served.json(), content_type="application/json")


class RecommendApi(APIView):
    """The serving endpoints. Declared and documented as DRF views, but a GET is dispatched
    without DRF's per-request machinery (Request wrapper, content negotiation, response
    finalisation), which measured ~75 µs of a ~400 µs cached request: the view's own
    authenticators and permissions run on the Django request, and any refusal or error is
    answered by DRF's `handle_exception`, so the responses are the ones APIView gives. Other
    methods go through APIView.dispatch."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [RequireScope("recommend")]

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
    prefetch: serving.ShopperPrefetch | None = None

    def before_authentication(self, request, user_id: str = "", **kwargs) -> None:
        # Input errors are left to get(), after authentication, so an unauthenticated request
        # still gets its 401 first.
        try:
            exclude_seen = _flag(request.GET, "exclude_seen", True)
        except ApplicationError:
            return
        if 0 < len(user_id) <= ID_MAX_LENGTH:
            self.prefetch = serving.shopper_prefetch(
                batch=request_batch(request), user_id=user_id, exclude_seen=exclude_seen
            )

    def get(self, request, user_id: str):
        query = request.GET
        served = serving.recommend_for_shopper(
            user_id=_id(user_id, "user_id"),
            filters=_filters(query),
            exclude_seen=_flag(query, "exclude_seen", True),
            prefetch=self.prefetch,
        )
        return _json(served)


class BuyAgainApi(RecommendApi):
    def get(self, request, user_id: str):
        served = serving.recommend_buy_again(
            user_id=_id(user_id, "user_id"), filters=_filters(request.GET)
        )
        return _json(served)


class SimilarItemsApi(RecommendApi):
    kind = "similar"

    def get(self, request, item_id: str):
        served = serving.recommend_for_item(
            item_id=_id(item_id, "item_id"), kind=self.kind, filters=_filters(request.GET)
        )
        return _json(served)


class BoughtTogetherApi(SimilarItemsApi):
    kind = "bought_together"


class TrendingApi(RecommendApi):
    def get(self, request):
        return _json(serving.recommend_trending(filters=_filters(request.GET)))


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
    def get(self, request):
        versions = selectors.model_version_list()[:50]
        return Response({"results": ModelVersionOutput(versions, many=True).data})


class ModelTrainApi(ManageApi):
    def post(self, request):
        version = services.model_version_start(
            actor_label=f"{services.API_KEY_LABEL_PREFIX}{request.auth.prefix}",
            request=request,
        )
        return Response(ModelVersionOutput(version).data, status=status.HTTP_202_ACCEPTED)


class ModelActivateApi(ManageApi):
    def post(self, request, number: int):
        version = services.model_version_activate(
            version=selectors.model_version_get(number=number),
            actor_api_key=request.auth,
            request=request,
        )
        return Response(ModelVersionOutput(version).data)


class ModelRollbackApi(ManageApi):
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
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        arms = serializers.ListField(child=serializers.DictField(), min_length=2, max_length=10)

    def get(self, request):
        experiments = selectors.experiment_list()[:50]
        return Response({"results": ExperimentOutput(experiments, many=True).data})

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
    def get(self, request, experiment_id: int):
        experiment = selectors.experiment_get(experiment_id=experiment_id)
        return Response(ExperimentOutput(experiment).data)


class ExperimentStopApi(ManageApi):
    def post(self, request, experiment_id: int):
        experiment = services.experiment_stop(
            experiment=selectors.experiment_get(experiment_id=experiment_id),
            actor_api_key=request.auth,
            request=request,
        )
        experiment = selectors.experiment_get(experiment_id=experiment.pk)
        return Response(ExperimentOutput(experiment).data)


class ExperimentResultsApi(ManageApi):
    def get(self, request, experiment_id: int):
        experiment = selectors.experiment_get(experiment_id=experiment_id)
        return Response(selectors.experiment_results(experiment=experiment))
