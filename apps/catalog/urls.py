"""`/api/v1/` of a store's host: the store data API."""

from django.urls import path

from apps.catalog import apis

urlpatterns = [
    path("items/", apis.ItemListApi.as_view(), name="api-items"),
    path("items/bulk", apis.ItemBulkApi.as_view(), name="api-items-bulk"),
    path("items/<str:item_id>", apis.ItemDetailApi.as_view(), name="api-item"),
    path("events/bulk", apis.EventBulkApi.as_view(), name="api-events-bulk"),
    path("users/<str:user_id>", apis.UserApi.as_view(), name="api-user"),
    path("users/<str:user_id>/events", apis.UserEventsApi.as_view(), name="api-user-events"),
    path("users/<str:user_id>/export", apis.UserExportApi.as_view(), name="api-user-export"),
]
