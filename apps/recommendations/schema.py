"""OpenAPI details of the recommendation endpoints (drf-spectacular view extensions, loaded by
the app config), kept out of the views: what each list is, the user-token header of
publishable keys, an example answer, and the nullable fields of models and experiments."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

from apps.catalog.schema import USER_TOKEN
from apps.recommendations import manage_apis

LIST_EXAMPLE = OpenApiExample(
    "A list",
    value={
        "recommendation_id": "9f2c4e8a1b7d4c3e8f6a5b4c3d2e1f00",
        "model_version": "v3",
        "strategy": "als",
        "items": [{"item_id": "sku-7", "score": 0.91}, {"item_id": "sku-2", "score": 0.84}],
    },
    response_only=True,
)
_ATTRIBUTION = (
    " Send `recommendation_id` with the click and purchase events the list leads to: that is "
    "how clicks and revenue are attributed."
)
DESCRIPTIONS = {
    "ShopperRecommendationsApi": (
        "Personal list for a shopper: the active model's (or the running experiment's arm), "
        "leaving out what they have seen unless `exclude_seen=false`; cold shoppers get their "
        "recent session's or trending items. Secret key with `recommend`, or a publishable key "
        "with that shopper's user token."
    ),
    "BuyAgainApi": (
        "Items the shopper bought before and is likely to buy again. Secret key with "
        "`recommend`, or a publishable key with that shopper's user token."
    ),
    "SessionRecommendationsApi": (
        "List for an anonymous browsing session, from its recent events. Secret key with "
        "`recommend`, or a publishable key."
    ),
    "SimilarItemsApi": (
        "Items similar to this one (same shoppers, same categories). Secret key with "
        "`recommend`, or a publishable key."
    ),
    "BoughtTogetherApi": (
        "Items bought in the same orders as this one. Secret key with `recommend`, or a "
        "publishable key."
    ),
    "TrendingApi": (
        "Items by recent, time-decayed popularity. Secret key with `recommend`, or a "
        "publishable key."
    ),
}
SHOPPER_VIEWS = ("ShopperRecommendationsApi", "BuyAgainApi")
_ID_RULE = (
    " The id rule: 1-128 printable characters, no leading or trailing space; percent-encode "
    "`/`, `?`, `#` and `%`."
)
_ID_PATTERN = r"^[\s\S]+$"  # as the `id` path converter documents it: anything, whole


def _path_id(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        str,
        location=OpenApiParameter.PATH,
        pattern=_ID_PATTERN,
        description=description + _ID_RULE,
    )


PATH_PARAMETERS = {
    "ShopperRecommendationsApi": _path_id("user_id", "The store's id of the shopper."),
    "BuyAgainApi": _path_id("user_id", "The store's id of the shopper."),
    "SessionRecommendationsApi": _path_id(
        "session_id",
        "The anonymous browsing session: the `session_id` the store (or the browser SDK's "
        "first-party session id) sends with that visitor's events. An unknown session gets "
        "trending items, never a 404.",
    ),
    "SimilarItemsApi": _path_id("item_id", "The item the list is about."),
    "BoughtTogetherApi": _path_id("item_id", "The item the list is about."),
}


def _serving_extension(view_name: str) -> type[OpenApiViewExtension]:
    class ServingSchema(OpenApiViewExtension):
        target_class = f"apps.recommendations.apis.{view_name}"

        def view_replacement(self):
            parameters = [USER_TOKEN] if view_name in SHOPPER_VIEWS else []
            if view_name in PATH_PARAMETERS:
                parameters.append(PATH_PARAMETERS[view_name])

            @extend_schema_view(
                get=extend_schema(
                    description=DESCRIPTIONS[view_name] + _ATTRIBUTION,
                    parameters=parameters,
                    examples=[LIST_EXAMPLE],
                )
            )
            class Documented(self.target_class):
                pass

            return Documented

    ServingSchema.__name__ = f"{view_name}Schema"
    return ServingSchema


SERVING_EXTENSIONS = [_serving_extension(name) for name in DESCRIPTIONS]


# --- models and experiments: what the output serializers leave unsaid -----------------------
class ModelVersionDocumented(manage_apis.ModelVersionOutput):
    """ModelVersionOutput as answered: a version in training has no window or end yet."""

    window_start = serializers.DateTimeField(allow_null=True)
    window_end = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    activated_at = serializers.DateTimeField(allow_null=True)


class ExperimentDocumented(manage_apis.ExperimentOutput):
    stopped_at = serializers.DateTimeField(allow_null=True)


MODEL_VERSION = extend_schema_serializer(component_name="ModelVersion")(ModelVersionDocumented)
EXPERIMENT = extend_schema_serializer(component_name="Experiment")(ExperimentDocumented)


def _replacing(target: str, **methods) -> type[OpenApiViewExtension]:
    class Replacing(OpenApiViewExtension):
        target_class = f"apps.recommendations.manage_apis.{target}"

        def view_replacement(self):
            @extend_schema_view(**methods)
            class Documented(self.target_class):
                pass

            return Documented

    Replacing.__name__ = f"{target}Schema"
    return Replacing


def _test(name: str) -> serializers.Serializer:
    return inline_serializer(
        name,
        {
            "z": serializers.FloatField(allow_null=True),
            "p_value": serializers.FloatField(allow_null=True),
            "significant": serializers.BooleanField(),
        },
        required=False,
        help_text="Arms after the control: two-proportion z-test against the control.",
    )


EXPERIMENT_RESULTS = inline_serializer(
    "ExperimentResults",
    {
        "experiment_id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "status": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "stopped_at": serializers.DateTimeField(allow_null=True),
        "alpha": serializers.FloatField(help_text="Significance level of the tests."),
        "arms": inline_serializer(
            "ExperimentArmResult",
            {
                "arm": serializers.CharField(),
                "model_version": serializers.CharField(allow_null=True),
                "strategy": serializers.CharField(),
                "traffic_percent": serializers.IntegerField(),
                "impressions": serializers.IntegerField(),
                "clicks": serializers.IntegerField(),
                "conversions": serializers.IntegerField(),
                "ctr": serializers.FloatField(),
                "conversion_rate": serializers.FloatField(),
                "control": serializers.BooleanField(),
                "ctr_test": _test("ArmCtrTest"),
                "conversion_rate_test": _test("ArmConversionTest"),
            },
            many=True,
        ),
    },
)

MANAGEMENT_EXTENSIONS = [
    _replacing(
        "ModelVersionListApi",
        get=extend_schema(
            description="The store's model versions, newest first (at most 50).",
            responses=inline_serializer("ModelVersionList", {"results": MODEL_VERSION(many=True)}),
        ),
    ),
    _replacing(
        "ModelTrainApi",
        post=extend_schema(
            description="Start training a new version (202: queued); progress on the version.",
            responses={202: MODEL_VERSION},
        ),
    ),
    _replacing(
        "ModelActivateApi",
        post=extend_schema(
            description="Serve this (ready or retired) version from now on.",
            responses=MODEL_VERSION,
        ),
    ),
    _replacing(
        "ModelRollbackApi",
        post=extend_schema(
            description="Serve the previously active version again.", responses=MODEL_VERSION
        ),
    ),
    _replacing(
        "ExperimentListApi",
        get=extend_schema(
            description="The store's experiments, newest first (at most 50).",
            responses=inline_serializer("ExperimentList", {"results": EXPERIMENT(many=True)}),
        ),
        post=extend_schema(responses={201: EXPERIMENT}),
    ),
    _replacing(
        "ExperimentDetailApi",
        get=extend_schema(description="One experiment and its arms.", responses=EXPERIMENT),
    ),
    _replacing(
        "ExperimentResultsApi",
        get=extend_schema(
            description="Per arm: impressions, clicks, conversions, CTR and conversion rate, "
            "with significance tests against the first arm (the control).",
            responses=EXPERIMENT_RESULTS,
        ),
    ),
    _replacing(
        "ExperimentStopApi",
        post=extend_schema(description="Stop the experiment for good.", responses=EXPERIMENT),
    ),
]
