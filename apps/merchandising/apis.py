"""Placements API (`/api/v1/placements/` on the store's host, scope `manage`): list, create,
read, replace and delete a store's placements. Errors use the one JSON error body of
apps.core.errors; invalid rules name the offending key (`rules.boosts[0].weight`)."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.apikeys.authentication import ApiKeyAuthentication
from apps.apikeys.permissions import RequireScope
from apps.core.errors import ApplicationError
from apps.merchandising import selectors, services
from apps.merchandising.models import Placement

_RULES_HELP = (
    "The placement's rules, every key optional: `filters` (a condition: `categories` any of, "
    "`price_min`, `price_max`, `in_stock`, `attributes` {name: value or [values]}, `items`), "
    "`exclude` and `hidden` (item ids never shown), `boosts` [{when: condition, weight: "
    "0-100 (above 1 boosts, below 1 buries), name}], `pins` [{item_id, position 1-100}], "
    "`diversity` {max_per_category, max_per_attribute: {name: n}}, `rotation` "
    "{window_seconds}. Applied in one order: candidates, hard filters, boost/bury, re-sort, "
    "diversity caps, pins, rotation, popularity top-up, truncate to k."
)
_EXAMPLE = {
    "name": "home",
    "scenario": "personal",
    "rules": {
        "filters": {"categories": ["shoes", "bags"], "price_max": 200},
        "boosts": [{"when": {"attributes": {"on_sale": True}}, "weight": 1.5, "name": "sale"}],
        "pins": [{"item_id": "sku-42", "position": 1}],
        "diversity": {"max_per_category": 3},
        "rotation": {"window_seconds": 3600},
    },
}


class PlacementOutput(serializers.Serializer):
    name = serializers.SlugField(help_text="The store's name of the slot, e.g. `home`, `pdp`.")
    scenario = serializers.ChoiceField(
        choices=Placement.Scenario.choices,
        help_text="The endpoint this placement rules; any other endpoint answers 400.",
    )
    rules = serializers.JSONField(help_text=_RULES_HELP)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PlacementUpdateInput(serializers.Serializer):
    scenario = serializers.CharField(
        help_text="personal, session, similar, bought-together, buy-again or trending."
    )
    rules = serializers.JSONField(required=False, help_text=_RULES_HELP)
    name = serializers.CharField(
        required=False, help_text="May repeat the name in the URL, not contradict it."
    )


class PlacementCreateInput(PlacementUpdateInput):
    name = serializers.CharField(
        help_text="1-64 lowercase letters, digits, '-' or '_'; unique in the store."
    )


def _data(request, serializer_class) -> dict:
    if not isinstance(request.data, dict):
        raise ApplicationError("Invalid input in: body.", fields={"body": ["A JSON object."]})
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data


class PlacementsApi(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [RequireScope("manage")]


class PlacementListApi(PlacementsApi):
    @extend_schema(
        operation_id="placements_list",
        responses=inline_serializer("PlacementList", {"results": PlacementOutput(many=True)}),
    )
    def get(self, request):
        placements = selectors.placement_list()
        return Response({"results": PlacementOutput(placements, many=True).data})

    @extend_schema(
        operation_id="placements_create",
        request=PlacementCreateInput,
        responses={201: PlacementOutput},
        examples=[OpenApiExample("A home-page placement", value=_EXAMPLE, request_only=True)],
    )
    def post(self, request):
        data = _data(request, PlacementCreateInput)
        placement = services.placement_create(
            name=data["name"],
            scenario=data["scenario"],
            rules=data.get("rules"),
            actor_api_key=request.auth,
            request=request,
        )
        return Response(PlacementOutput(placement).data, status=status.HTTP_201_CREATED)


class PlacementDetailApi(PlacementsApi):
    @extend_schema(operation_id="placements_get", responses=PlacementOutput)
    def get(self, request, name: str):
        return Response(PlacementOutput(selectors.placement_get(name=name)).data)

    @extend_schema(
        operation_id="placements_replace",
        request=PlacementUpdateInput,
        responses=PlacementOutput,
        description="Replaces the scenario and the rules (rules absent: none).",
    )
    def put(self, request, name: str):
        data = _data(request, PlacementUpdateInput)
        if data.get("name", name) != name:
            # A placement is renamed by creating the new one: the body's name is not a rename.
            raise ApplicationError(
                "Invalid input in: name.", fields={"name": ["Must match the name in the URL."]}
            )
        placement = services.placement_update(
            name=name,
            scenario=data["scenario"],
            rules=data.get("rules"),
            actor_api_key=request.auth,
            request=request,
        )
        return Response(PlacementOutput(placement).data)

    @extend_schema(operation_id="placements_delete", request=None, responses={204: None})
    def delete(self, request, name: str):
        services.placement_delete(name=name, actor_api_key=request.auth, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


# The recommendation endpoints' rule parameters (their OpenAPI description; parsed by
# apps.merchandising.placing.plan_from_query).
RULE_PARAMETERS = [
    OpenApiParameter(
        "placement",
        str,
        description="A placement of the store (its scenario must be this endpoint's, else 400):"
        " its rules apply.",
    ),
    OpenApiParameter(
        "exclude", str, description="Item ids never to show: comma-separated and/or repeated."
    ),
    OpenApiParameter("price_min", float, description="Only items priced at least this."),
    OpenApiParameter("price_max", float, description="Only items priced at most this."),
    OpenApiParameter(
        "attr.<name>",
        str,
        description="Only items whose attribute <name> equals the value (repeat: any of them),"
        " e.g. `attr.brand=acme&attr.brand=zeta`.",
    ),
    OpenApiParameter(
        "explain",
        bool,
        description="Each item gets a `reason`: similar_to, bought_together, buy_again,"
        " trending_in_category, popular, pinned, boosted_by or personal_taste.",
    ),
    OpenApiParameter(
        "user_id",
        str,
        description="Item and trending lists: the shopper they are shown to, for the"
        " placement's rotation.",
    ),
]
