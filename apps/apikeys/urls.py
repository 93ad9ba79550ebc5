from django.urls import path

from apps.apikeys import apis, views

api_urlpatterns = [
    path("auth/key/", apis.CurrentKeyApi.as_view(), name="api-current-key"),
    path("api-keys/", apis.ApiKeyListCreateApi.as_view(), name="api-list"),
    path("api-keys/<int:api_key_id>/revoke/", apis.ApiKeyRevokeApi.as_view(), name="api-revoke"),
]

page_urlpatterns = [
    path("", views.api_key_list_page, name="list"),
    path("<int:api_key_id>/revoke/", views.api_key_revoke_page, name="revoke"),
]
