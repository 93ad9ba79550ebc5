"""Connecting a store to its shop platform: the webhook secret (generated for WooCommerce and
shown once; pasted for Shopify), audited."""

from __future__ import annotations

import re

from django.db import transaction
from django.utils import timezone

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.connectors.models import Platform, StoreConnection
from apps.connectors.signatures import woo_secret_generate
from apps.core.errors import ApplicationError

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}\.myshopify\.com$")
# Shopify API secret keys: 32 hex characters, or `shpss_` + 32 hex for newer apps. Accepted
# loosely (printable ASCII without spaces) so a future format is not refused.
SHOPIFY_SECRET = re.compile(r"^[!-~]{16,200}$")


def _connection_for_update(platform: str) -> tuple[StoreConnection, bool]:
    connection, created = StoreConnection.objects.select_for_update().get_or_create(
        platform=platform
    )
    return connection, created


def _secret_store(
    connection: StoreConnection, secret: str, *, created: bool, acting_user, actor_label, request
) -> None:
    connection.webhook_secret = secret
    connection.secret_set_at = timezone.now()
    connection.save()
    if created:
        audit_record(
            action=AuditAction.CONNECTOR_CONNECTED,
            acting_user=acting_user,
            actor_label=actor_label,
            target_type="connector",
            target_id=connection.platform,
            request=request,
        )
    audit_record(
        action=AuditAction.CONNECTOR_SECRET_SET,
        acting_user=acting_user,
        actor_label=actor_label,
        target_type="connector",
        target_id=connection.platform,
        details={"shop_domain": connection.shop_domain},
        request=request,
    )


@transaction.atomic
def connection_woocommerce_secret_generate(
    *, site_url: str = "", acting_user=None, actor_label: str = "", request=None
) -> tuple[StoreConnection, str]:
    """Connect WooCommerce (or replace its secret): returns (connection, secret). The secret
    is returned this once, to be pasted into the WooCommerce webhooks; deliveries signed with
    a previous secret are refused from now on. Audited (`connector.connected` the first time,
    `connector.secret_set`), never with the secret."""
    if len(site_url) > 255:
        raise ApplicationError(
            "At most 255 characters.", fields={"site_url": ["At most 255 characters."]}
        )
    connection, created = _connection_for_update(Platform.WOOCOMMERCE)
    if site_url:
        connection.shop_domain = site_url
    secret = woo_secret_generate()
    _secret_store(
        connection,
        secret,
        created=created,
        acting_user=acting_user,
        actor_label=actor_label,
        request=request,
    )
    return connection, secret


@transaction.atomic
def connection_shopify_secret_set(
    *, secret: str, shop_domain: str, acting_user=None, actor_label: str = "", request=None
) -> StoreConnection:
    """Connect Shopify with the custom app's API secret key (which signs its webhooks) and the
    shop's myshopify.com domain (deliveries naming another shop are refused). Raises
    ApplicationError 400 naming `secret` or `shop_domain`. Audited, never with the secret."""
    secret = secret.strip()
    shop_domain = shop_domain.strip().lower()
    fields = {}
    if not SHOPIFY_SECRET.match(secret):
        fields["secret"] = [
            "Paste the app's API secret key: 16 to 200 printable characters, no spaces."
        ]
    if not SHOP_DOMAIN.match(shop_domain):
        fields["shop_domain"] = ["The shop's myshopify.com domain, e.g. my-shop.myshopify.com."]
    if fields:
        raise ApplicationError(f"Invalid input in: {', '.join(sorted(fields))}.", fields=fields)
    connection, created = _connection_for_update(Platform.SHOPIFY)
    connection.shop_domain = shop_domain
    _secret_store(
        connection,
        secret,
        created=created,
        acting_user=acting_user,
        actor_label=actor_label,
        request=request,
    )
    return connection
