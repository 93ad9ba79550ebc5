from django.urls import path

from apps.connectors import views

app_name = "connectors"

urlpatterns = [
    path("woocommerce/webhook", views.woocommerce_webhook, name="woocommerce-webhook"),
    path("shopify/webhook", views.shopify_webhook, name="shopify-webhook"),
]
