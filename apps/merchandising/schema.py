"""OpenAPI details of the placements API (drf-spectacular view extensions, loaded by the app
config), kept out of the views: what each operation does, its path parameter, and examples of
a placement with three rules as sent and as answered (rules come back in canonical form)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)

TAGS = ["Placements"]
NAME = OpenApiParameter(
    "name",
    str,
    location=OpenApiParameter.PATH,
    description="The placement's name in the store (1-64 lowercase letters, digits, '-' or "
    "'_'), as the recommendation endpoints' `placement` parameter names it.",
)

# A placement with three rules: a hard filter, a boost and a pin.
RULES_SENT = {
    "filters": {"categories": ["shoes", "bags"], "price_max": 200},
    "boosts": [{"when": {"attributes": {"on_sale": True}}, "weight": 1.5, "name": "sale"}],
    "pins": [{"item_id": "sku-42", "position": 1}],
}
# The same rules as stored and answered: lists sorted, numbers as floats, values as text.
RULES_ANSWERED = {
    "filters": {"categories": ["bags", "shoes"], "price_max": 200.0},
    "boosts": [{"when": {"attributes": {"on_sale": ["true"]}}, "weight": 1.5, "name": "sale"}],
    "pins": [{"item_id": "sku-42", "position": 1}],
}
CREATE_EXAMPLE = {"name": "home", "scenario": "personal", "rules": RULES_SENT}
REPLACE_EXAMPLE = {"scenario": "personal", "rules": RULES_SENT}
PLACEMENT_ANSWERED = {
    "name": "home",
    "scenario": "personal",
    "rules": RULES_ANSWERED,
    "created_at": "2026-05-01T10:00:00Z",
    "updated_at": "2026-05-01T10:00:00Z",
}

_SENT = OpenApiExample("A placement with three rules", value=CREATE_EXAMPLE, request_only=True)
_ANSWERED = OpenApiExample(
    "The placement as answered", value=PLACEMENT_ANSWERED, response_only=True
)
_RULE_ORDER = (
    " Rules apply in one order: candidates, hard filters, boost/bury, re-sort, diversity "
    "caps, pins, rotation, popularity top-up, truncate to k. Invalid rules answer 400 naming "
    "the offending key (`rules.boosts[0].weight`). Secret key with the `manage` scope."
)


class PlacementListSchema(OpenApiViewExtension):
    target_class = "apps.merchandising.apis.PlacementListApi"

    def view_replacement(self):
        @extend_schema_view(
            get=extend_schema(
                summary="List placements",
                description="The store's placements (named slots of the storefront such as "
                "`home` or `pdp`), each with its scenario and rules."
                " Secret key with the `manage` scope.",
                tags=TAGS,
                examples=[
                    OpenApiExample(
                        "One placement",
                        value={"results": [PLACEMENT_ANSWERED]},
                        response_only=True,
                    )
                ],
            ),
            post=extend_schema(
                summary="Create a placement",
                description="A new placement: a name unique in the store, the scenario (the "
                "recommendation endpoint it rules) and its rules (every key optional)."
                + _RULE_ORDER,
                tags=TAGS,
                examples=[_SENT, _ANSWERED],
            ),
        )
        class Documented(self.target_class):
            pass

        return Documented


class PlacementDetailSchema(OpenApiViewExtension):
    target_class = "apps.merchandising.apis.PlacementDetailApi"

    def view_replacement(self):
        @extend_schema_view(
            get=extend_schema(
                summary="Read a placement",
                description="One placement with its rules in canonical form (404 if the store "
                "has none of that name). Secret key with the `manage` scope.",
                tags=TAGS,
                parameters=[NAME],
                examples=[_ANSWERED],
            ),
            put=extend_schema(
                summary="Replace a placement",
                description="Replaces the scenario and the rules (rules absent: none); the "
                "name stays." + _RULE_ORDER,
                tags=TAGS,
                parameters=[NAME],
                examples=[
                    OpenApiExample("Three rules", value=REPLACE_EXAMPLE, request_only=True),
                    _ANSWERED,
                ],
            ),
            delete=extend_schema(
                summary="Delete a placement",
                description="Deletes the placement; recommendation requests naming it then "
                "answer 400. Secret key with the `manage` scope.",
                tags=TAGS,
                parameters=[NAME],
            ),
        )
        class Documented(self.target_class):
            pass

        return Documented
