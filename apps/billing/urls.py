"""Store pages of billing, under /billing/ on the store's host (namespace "billing"). The
Stripe webhook is on the public domain: config/urls_public.py."""

from django.urls import path

from apps.billing import views

app_name = "billing"

urlpatterns = [
    path("", views.billing_overview, name="overview"),
    path("checkout/", views.billing_checkout, name="checkout"),
    path("portal/", views.billing_portal, name="portal"),
]
