"""Store data API (`/api/v1/` on a store's host): items, shoppers, events.

Authentication: `Authorization: Bearer <API key>` of the host's store. Writes need the `ingest`
scope, reads any scope. Errors use the one JSON error body of apps.core.errors.

The events endpoint is the hot path: it reads the raw body, parses it with orjson and hands the
rows to `events_ingest` (hand-written validation, COPY); DRF still does authentication,
permissions, throttling and errors. The other endpoints parse JSON with orjson too.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from apps.apikeys.authentication import ApiKeyAuthentication
from apps.apikeys.permissions import RequireScope
from apps.apikeys.publishable import (
    PublishableAccess,
    PublishableAnonymous,
    PublishableKeyAuthentication,
    events_check,
)
from apps.catalog import selectors, services
from apps.catalog.request_bodies import batch_rows, raw_json_body
from apps.core.errors import ApplicationError
from apps.core.ids import id_clean, id_lookup
from apps.core.pagination import StoreCursorPagination
from apps.core.params import bool_param

MAX_EVENTS_PER_BATCH = 10_000
MAX_ITEMS_PER_BATCH = 1_000


def _json_response(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


class StoreApi(APIView):
    """Base of the store data API: API-key authentication, any scope to read."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [RequireScope.any()]
    renderer_classes = [JSONRenderer]
    write_permission_classes = [RequireScope("ingest")]

    def get_permissions(self):
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [permission() for permission in self.permission_classes]
        return [permission() for permission in self.write_permission_classes]


# --- Output shapes (also the OpenAPI schema) ----------------------------------------------------
class ItemOutput(serializers.Serializer):
    item_id = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    categories = serializers.ListField(child=serializers.CharField())
    price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    in_stock = serializers.BooleanField()
    attributes = serializers.DictField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ItemInput(serializers.Serializer):
    """Documentation only: validation is in apps.catalog.item_validation."""

    item_id = serializers.CharField(max_length=128)
    title = serializers.CharField(max_length=500, required=False)
    description = serializers.CharField(required=False)
    categories = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
    price = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, required=False, allow_null=True
    )
    in_stock = serializers.BooleanField(required=False)
    attributes = serializers.DictField(required=False, help_text="JSON object, at most 8 KB.")


class EventInput(serializers.Serializer):
    """Documentation only: validation is in apps.catalog.validation."""

    event_id = serializers.CharField(max_length=128, required=False, allow_null=True)
    user_id = serializers.CharField(
        max_length=128,
        required=False,
        allow_null=True,
        help_text="The shopper. Required unless session_id is given (an anonymous visitor).",
    )
    session_id = serializers.CharField(
        max_length=128,
        required=False,
        allow_null=True,
        help_text="The browsing session. With a user_id too, links the session to the shopper: "
        "its anonymous events then count as theirs.",
    )
    item_id = serializers.CharField(max_length=128)
    type = serializers.ChoiceField(
        choices=["view", "add_to_cart", "purchase", "rating", "click", "dismiss", "refund"],
        help_text="dismiss: not interested (kept out of the shopper's recommendations). "
        "refund: undoes the purchase of the same (order_id, item_id).",
    )
    value = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text="Rating 1-5 (required), or a quantity (a purchase: its amount) > 0 and "
        "at most 1e12; a row outside is an error naming value.",
    )
    timestamp = serializers.DateTimeField(
        help_text="ISO 8601 with a zone (any offset below ±24:00, stored in UTC); "
        "-3 years to +5 min."
    )
    recommendation_id = serializers.CharField(max_length=64, required=False, allow_null=True)
    order_id = serializers.CharField(
        max_length=128,
        required=False,
        allow_null=True,
        help_text="Purchases and refunds (required there): the order (basket) the line "
        "belongs to; a purchase is one per (order_id, item_id); 400 on other types.",
    )


class EventOutput(serializers.Serializer):
    event_id = serializers.CharField(allow_null=True)
    user_id = serializers.CharField(allow_null=True)
    session_id = serializers.CharField(allow_null=True)
    order_id = serializers.CharField(allow_null=True)
    item_id = serializers.CharField()
    type = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    timestamp = serializers.DateTimeField()
    recommendation_id = serializers.CharField(allow_null=True)
    received_at = serializers.DateTimeField()


class RowErrorOutput(serializers.Serializer):
    index = serializers.IntegerField()
    field = serializers.CharField()
    message = serializers.CharField()


def _item_dict(item) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "title": item.title,
        "description": item.description,
        "categories": item.categories,
        "price": None if item.price is None else str(item.price),
        "in_stock": item.in_stock,
        "attributes": item.attributes,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }


class ItemCursorPagination(StoreCursorPagination):
    ordering = "id"


class EventCursorPagination(StoreCursorPagination):
    ordering = ("-timestamp", "-id")


# --- Items --------------------------------------------------------------------------------------
class ItemListApi(StoreApi):
    @extend_schema(
        operation_id="items_list",
        parameters=[
            OpenApiParameter("category", str, description="Items listed in this category."),
            OpenApiParameter("in_stock", bool),
            OpenApiParameter("cursor", str),
            OpenApiParameter("page_size", int, description="1-1000, default 100."),
        ],
        responses=ItemOutput(many=True),
    )
    def get(self, request):
        items = selectors.item_list(
            category=request.query_params.get("category"),
            in_stock=bool_param(request.query_params, "in_stock"),
        )
        paginator = ItemCursorPagination()
        page = paginator.paginate_queryset(items, request, view=self)
        return paginator.get_paginated_response([_item_dict(item) for item in page])


class ItemBulkApi(StoreApi):
    def dispatch(self, request, *args, **kwargs):
        # "bulk" is a valid item id too: every method but POST is that item's.
        if request.method != "POST":
            return ItemDetailApi.as_view()(request, item_id="bulk")
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(
        operation_id="items_bulk_upsert",
        request=ItemInput(many=True),
        responses=inline_serializer(
            "ItemsBulkResult",
            {
                "created": serializers.IntegerField(),
                "updated": serializers.IntegerField(),
                "errors": RowErrorOutput(many=True),
            },
        ),
        description='Create or replace up to 1,000 items (a JSON array, or {"items": [...]}).',
    )
    def post(self, request):
        rows = batch_rows(request.data, key="items", limit=MAX_ITEMS_PER_BATCH)
        result = services.items_upsert(rows=rows)
        return _json_response(result.as_dict())


class ItemDetailApi(StoreApi):
    @extend_schema(operation_id="items_get", responses=ItemOutput)
    def get(self, request, item_id: str):
        item_id = id_lookup(item_id, field="item_id")
        return _json_response(_item_dict(selectors.item_get(item_id=item_id)))

    @extend_schema(
        operation_id="items_put",
        request=ItemInput,
        responses={200: ItemOutput, 201: ItemOutput},
        description="Create or replace the item; omitted fields take their defaults.",
    )
    def put(self, request, item_id: str):
        item, created = services.item_upsert(item_id=item_id, data=request.data)
        return _json_response(_item_dict(item), status=201 if created else 200)

    @extend_schema(
        operation_id="items_delete",
        responses={204: None},
        description="Hide the item from listings and recommendations at once; events are kept.",
    )
    def delete(self, request, item_id: str):
        item_id = id_lookup(item_id, field="item_id")
        services.item_delete(item_id=item_id, actor_api_key=request.auth, request=request)
        return HttpResponse(status=204)


# --- Events -------------------------------------------------------------------------------------
class EventBulkApi(StoreApi):
    # The browser SDK tracks with a publishable key: its rows are checked by events_check.
    authentication_classes = [PublishableKeyAuthentication, ApiKeyAuthentication]
    permission_classes = write_permission_classes = [RequireScope("ingest") | PublishableAnonymous]

    @extend_schema(
        operation_id="events_bulk",
        request=EventInput(many=True),
        responses={
            202: inline_serializer(
                "EventsBulkResult",
                {
                    "accepted": serializers.IntegerField(),
                    "duplicates": serializers.IntegerField(),
                    "errors": RowErrorOutput(many=True),
                },
            )
        },
        description=(
            'Store up to 10,000 events (a JSON array, or {"events": [...]}); at most 10 MB. '
            "202 means the valid rows are committed; invalid rows are listed in `errors`. "
            "Events of items not yet in the catalog create hidden stub items."
        ),
    )
    def post(self, request):
        rows = batch_rows(raw_json_body(request), key="events", limit=MAX_EVENTS_PER_BATCH)
        if isinstance(request.auth, PublishableAccess):
            events_check(rows, request.auth)
        result = services.events_ingest(rows=rows, source="api")
        return _json_response(result.as_dict(), status=202)


# --- Shoppers -----------------------------------------------------------------------------------
class UserApi(StoreApi):
    @extend_schema(
        operation_id="users_put",
        request=inline_serializer("ShopperInput", {"attributes": serializers.DictField()}),
        responses={
            200: inline_serializer(
                "ShopperOutput",
                {
                    "user_id": serializers.CharField(),
                    "attributes": serializers.DictField(),
                    "first_seen_at": serializers.DateTimeField(allow_null=True),
                    "last_seen_at": serializers.DateTimeField(allow_null=True),
                },
            )
        },
    )
    def put(self, request, user_id: str):
        user_id = id_clean(user_id, field="user_id")
        data = request.data
        if not isinstance(data, dict):
            raise ApplicationError(
                "Send a JSON object with `attributes`.", fields={"attributes": ["Required."]}
            )
        unknown = sorted(name for name in data if name != "attributes")
        if unknown:
            raise ApplicationError(
                f"Unknown field(s): {', '.join(unknown)}.",
                fields={name: ["Unknown field."] for name in unknown},
            )
        if "attributes" not in data:
            raise ApplicationError(
                "attributes is required.", fields={"attributes": ["This field is required."]}
            )
        shopper, created = services.shopper_attributes_set(
            user_id=user_id, attributes=data["attributes"]
        )
        body = {
            "user_id": shopper.user_id,
            "attributes": shopper.attributes,
            "first_seen_at": shopper.first_seen_at,
            "last_seen_at": shopper.last_seen_at,
        }
        return _json_response(body, status=201 if created else 200)

    @extend_schema(
        operation_id="users_erase",
        responses={
            200: inline_serializer(
                "ShopperErased",
                {
                    "erased": inline_serializer(
                        "ShopperErasedCounts",
                        {
                            "events": serializers.IntegerField(),
                            "profile": serializers.IntegerField(),
                            "recommendations": serializers.IntegerField(),
                        },
                    )
                },
            )
        },
        description="GDPR erasure: events, profile and cached recommendations. Audited.",
    )
    def delete(self, request, user_id: str):
        user_id = id_lookup(user_id, field="user_id")
        erased = services.shopper_erase(
            user_id=user_id, actor_api_key=request.auth, request=request
        )
        return _json_response({"erased": erased})


class UserSubresourceApi(StoreApi):
    """`/users/{id}/<suffix>` answers GET; any other method is the bare `/users/{id}` of the
    shopper whose id ends in `/<suffix>` (ids may contain "/")."""

    suffix = ""

    def dispatch(self, request, *args, **kwargs):
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            return UserApi.as_view()(request, user_id=f"{kwargs['user_id']}/{self.suffix}")
        return super().dispatch(request, *args, **kwargs)


class UserEventsApi(UserSubresourceApi):
    suffix = "events"

    @extend_schema(
        operation_id="users_events",
        parameters=[OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)],
        responses=EventOutput(many=True),
    )
    def get(self, request, user_id: str):
        user_id = id_lookup(user_id, field="user_id")
        events = selectors.shopper_events(user_id=user_id).values(*selectors.EVENT_PUBLIC_FIELDS)
        paginator = EventCursorPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(page)


class UserExportApi(UserSubresourceApi):
    suffix = "export"

    @extend_schema(
        operation_id="users_export",
        responses=OpenApiTypes.OBJECT,
        description="GDPR access: everything held about the shopper. Audited.",
    )
    def get(self, request, user_id: str):
        user_id = id_lookup(user_id, field="user_id")
        data = services.shopper_export(user_id=user_id, actor_api_key=request.auth, request=request)
        return _json_response(data)
