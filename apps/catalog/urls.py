"""`/api/v1/` of a store's host: the store data API.

Ids may contain "/" (apps.core.ids): `<id:...>` captures the rest of the path, so each route
with a suffix comes before its bare route. `/users/{id}` has no GET and the suffixed routes
are GET only, so no id is ever shadowed: the suffixed views hand other methods to the bare one.
"""

from django.urls import path

from apps.catalog import apis

urlpatterns = [
    path("items/", apis.ItemListApi.as_view(), name="api-items"),
    path("items/bulk", apis.ItemBulkApi.as_view(), name="api-items-bulk"),
    path("items/<id:item_id>", apis.ItemDetailApi.as_view(), name="api-item"),
    path("events/bulk", apis.EventBulkApi.as_view(), name="api-events-bulk"),
    path("users/<id:user_id>/events", apis.UserEventsApi.as_view(), name="api-user-events"),
    path("users/<id:user_id>/export", apis.UserExportApi.as_view(), name="api-user-export"),
    path("users/<id:user_id>", apis.UserApi.as_view(), name="api-user"),
]
