"""A store's connections to its shop platform (WooCommerce, Shopify) and the log of the
webhook deliveries they sent. Store-schema tables: one store's secrets and deliveries never
share a table with another's."""

from __future__ import annotations

from django.db import models

from apps.core.pii import EncryptedJSONField


class Platform(models.TextChoices):
    WOOCOMMERCE = "woocommerce", "WooCommerce"
    SHOPIFY = "shopify", "Shopify"


class StoreConnection(models.Model):
    """The store's connection to one platform. `webhook_secret` verifies the platform's
    signatures, which are HMACs keyed by the secret itself: it cannot be stored as a one-way
    hash like API keys. It is stored encrypted at rest (Fernet, PII_ENCRYPTION_KEYS, as shopper
    PII), never logged, never shown by the admin or the dashboard after the moment it is
    generated (WooCommerce) or pasted (Shopify)."""

    platform = models.CharField(max_length=16, choices=Platform.choices, unique=True)
    # Shopify: the shop's myshopify.com domain (checked against X-Shopify-Shop-Domain);
    # WooCommerce: the site URL (informational: X-WC-Webhook-Source is not signed).
    shop_domain = models.CharField(max_length=255, blank=True)
    webhook_secret = EncryptedJSONField(default="")
    secret_set_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["platform"]

    def __str__(self) -> str:
        return self.platform


class WebhookDelivery(models.Model):
    """One verified webhook delivery, by the platform's delivery id (a redelivery is answered
    without being processed again). Holds no payload: order and customer payloads carry
    personal data; `summary` keeps counts only."""

    class Status(models.TextChoices):
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    platform = models.CharField(max_length=16, choices=Platform.choices)
    delivery_key = models.CharField(max_length=200)
    topic = models.CharField(max_length=100)
    resource_id = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    error = models.TextField(blank=True)
    summary = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=1)
    received_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "delivery_key"], name="connector_delivery_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.platform} {self.topic} {self.delivery_key}"


class ShopperDataRequest(models.Model):
    """A shopper's data request received from the platform (Shopify customers/data_request):
    the export ShelfSense holds about them, encrypted, for the store owner to download and
    answer with. Erased with the shopper."""

    platform = models.CharField(max_length=16, choices=Platform.choices)
    platform_request_id = models.CharField(max_length=128, blank=True)
    user_id = models.CharField(max_length=128, db_index=True)
    export = EncryptedJSONField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.platform} data request {self.platform_request_id}"
