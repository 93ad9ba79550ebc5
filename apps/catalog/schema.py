"""OpenAPI details of the store data API (drf-spectacular view extensions, loaded by the app
config), kept out of the views: paginated list bodies, the statuses each answer can have, and
examples."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

from apps.catalog import apis

USER_TOKEN = OpenApiParameter(
    "X-ShelfSense-User-Token",
    str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="Publishable keys only: the store backend's token for the shopper acting.",
)
_PAGE_PARAMETERS = [
    OpenApiParameter("cursor", str, description="The `next` or `previous` link's cursor."),
    OpenApiParameter("page_size", int, description="1-1000, default 100."),
]


def paginated(name: str, serializer: serializers.Serializer) -> serializers.Serializer:
    """A cursor page: {next, previous, results}."""
    return inline_serializer(
        name,
        {
            "next": serializers.CharField(allow_null=True, help_text="URL of the next page."),
            "previous": serializers.CharField(
                allow_null=True, help_text="URL of the previous page."
            ),
            "results": serializer,
        },
    )


ITEM_EXAMPLE = {
    "item_id": "sku-123",
    "title": "Linen shirt",
    "description": "Relaxed fit.",
    "categories": ["shirts", "summer"],
    "price": "39.90",
    "in_stock": True,
    "attributes": {"brand": "Acme", "colour": "blue"},
}


class ItemListSchema(OpenApiViewExtension):
    target_class = "apps.catalog.apis.ItemListApi"

    def view_replacement(self):
        @extend_schema_view(
            get=extend_schema(
                description="The store's visible items, oldest first, in cursor pages.",
                parameters=_PAGE_PARAMETERS,
                responses=paginated("PaginatedItemList", apis.ItemOutput(many=True)),
            )
        )
        class Documented(self.target_class):
            pass

        return Documented


class ItemDetailSchema(OpenApiViewExtension):
    target_class = "apps.catalog.apis.ItemDetailApi"

    def view_replacement(self):
        @extend_schema_view(
            get=extend_schema(description="One item (hidden items answer 404)."),
            put=extend_schema(
                examples=[OpenApiExample("An item", value=ITEM_EXAMPLE, request_only=True)]
            ),
        )
        class Documented(self.target_class):
            pass

        return Documented


class ItemBulkSchema(OpenApiViewExtension):
    target_class = "apps.catalog.apis.ItemBulkApi"

    def view_replacement(self):
        @extend_schema_view(
            post=extend_schema(
                examples=[
                    OpenApiExample("Two items", value=[ITEM_EXAMPLE, {"item_id": "sku-124"}]),
                    OpenApiExample(
                        "Result",
                        value={"created": 1, "updated": 1, "errors": []},
                        response_only=True,
                    ),
                ]
            )
        )
        class Documented(self.target_class):
            pass

        return Documented


class EventBulkSchema(OpenApiViewExtension):
    target_class = "apps.catalog.apis.EventBulkApi"

    def view_replacement(self):
        @extend_schema_view(
            post=extend_schema(
                parameters=[USER_TOKEN],
                examples=[
                    OpenApiExample(
                        "A view and a purchase",
                        value=[
                            {
                                "event_id": "evt-1",
                                "user_id": "u42",
                                "item_id": "sku-123",
                                "type": "view",
                                "timestamp": "2026-05-01T10:00:00Z",
                            },
                            {
                                "event_id": "evt-2",
                                "user_id": "u42",
                                "item_id": "sku-123",
                                "type": "purchase",
                                "order_id": "1001",
                                "value": 1,
                                "timestamp": "2026-05-01T10:05:00Z",
                                "recommendation_id": "9f2c4e8a1b7d4c3e8f6a5b4c3d2e1f00",
                            },
                        ],
                        request_only=True,
                    ),
                    OpenApiExample(
                        "Result",
                        value={"accepted": 2, "duplicates": 0, "errors": []},
                        response_only=True,
                        status_codes=["202"],
                    ),
                ],
            )
        )
        class Documented(self.target_class):
            pass

        return Documented


_SHOPPER = inline_serializer(
    "ShopperOutput",
    {
        "user_id": serializers.CharField(),
        "attributes": serializers.DictField(),
        "first_seen_at": serializers.DateTimeField(allow_null=True),
        "last_seen_at": serializers.DateTimeField(allow_null=True),
    },
)


class UserSchema(OpenApiViewExtension):
    target_class = "apps.catalog.apis.UserApi"

    def view_replacement(self):
        @extend_schema_view(
            delete=extend_schema(
                responses={
                    200: inline_serializer(
                        "ShopperErased",
                        {
                            "erased": serializers.DictField(
                                child=serializers.IntegerField(),
                                help_text="Rows or entries erased, by kind of data (events, "
                                "profile, sessions, lists...; the kinds grow with the platform).",
                            )
                        },
                    )
                }
            ),
            put=extend_schema(
                description="Set the shopper's attributes (201 when the shopper is new).",
                responses={200: _SHOPPER, 201: _SHOPPER},
                examples=[
                    OpenApiExample(
                        "Attributes", value={"attributes": {"tier": "gold"}}, request_only=True
                    )
                ],
            ),
        )
        class Documented(self.target_class):
            pass

        return Documented


class UserEventsSchema(OpenApiViewExtension):
    target_class = "apps.catalog.apis.UserEventsApi"

    def view_replacement(self):
        @extend_schema_view(
            get=extend_schema(
                description="The shopper's events, newest first, in cursor pages.",
                parameters=_PAGE_PARAMETERS,
                responses=paginated("PaginatedEventList", apis.EventOutput(many=True)),
            )
        )
        class Documented(self.target_class):
            pass

        return Documented
