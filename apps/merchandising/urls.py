"""Mounted by config/urls_tenant.py at /api/v1/placements/."""

from django.urls import path

from apps.merchandising import apis

urlpatterns = [
    path("", apis.PlacementListApi.as_view(), name="placements"),
    path("<str:name>", apis.PlacementDetailApi.as_view(), name="placement"),
]
