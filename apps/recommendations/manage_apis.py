"""Model, experiment and analytics management (scope `manage`, analytics also `recommend`) on
the store's host: model versions (train, activate, roll back), A/B experiments and their
results, and the recommendation analytics summary. Serializers as usual; the list endpoints
are apps.recommendations.apis."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.apikeys.authentication import ApiKeyAuthentication
from apps.apikeys.permissions import RequireScope
from apps.core.errors import ApplicationError
from apps.recommendations import selectors, services


def _invalid(name: str, message: str) -> ApplicationError:
    return ApplicationError(f"Invalid input in: {name}.", fields={name: [message]})


class ManageApi(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [RequireScope("manage")]


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
# Revenue is a sum of purchases of up to EVENT_VALUE_MAX (1e12) each: 14 digits overflowed (a
# 500) at the first such purchase. The selector's Decimal context keeps 28, so any total it
# returns fits.
REVENUE_MAX_DIGITS = 28


class AnalyticsDayOutput(serializers.Serializer):
    date = serializers.DateField()
    lists_served = serializers.IntegerField()
    clicks = serializers.IntegerField(help_text="Lists served with an attributed click.")
    ctr = serializers.FloatField()
    conversions = serializers.IntegerField(help_text="Lists served with an attributed purchase.")
    conversion_rate = serializers.FloatField()
    revenue = serializers.DecimalField(
        max_digits=REVENUE_MAX_DIGITS, decimal_places=2, coerce_to_string=False
    )


class AnalyticsSummaryOutput(serializers.Serializer):
    days = serializers.IntegerField()
    lists_served = serializers.IntegerField()
    clicks = serializers.IntegerField(help_text="Lists served with an attributed click.")
    ctr = serializers.FloatField(help_text="clicks / lists_served (0 without lists).")
    conversions = serializers.IntegerField(help_text="Lists served with an attributed purchase.")
    conversion_rate = serializers.FloatField(help_text="conversions / lists_served.")
    revenue = serializers.DecimalField(
        max_digits=REVENUE_MAX_DIGITS, decimal_places=2, coerce_to_string=False
    )
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
