"""Settings → Integrations (`/settings/integrations/`): the store's WooCommerce and Shopify
connections: webhook URLs, generating the WooCommerce secret (shown once), pasting the Shopify
app's secret, the last deliveries and their errors, and Shopify data requests to download."""

from __future__ import annotations

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from apps.connectors import selectors as connector_selectors
from apps.connectors import services as connector_services
from apps.connectors.models import Platform
from apps.core.errors import ApplicationError
from apps.users.permissions import can, store_member_required

TEMPLATE = "dashboard/integrations.html"


class WooCommerceForm(forms.Form):
    site_url = forms.URLField(
        max_length=255,
        required=False,
        assume_scheme="https",
        label="Site URL",
        help_text="Optional: your WooCommerce site, for reference.",
    )


class ShopifyForm(forms.Form):
    shop_domain = forms.CharField(
        max_length=255, label="Shop domain", help_text="my-shop.myshopify.com"
    )
    secret = forms.CharField(
        max_length=200,
        label="App API secret key",
        widget=forms.PasswordInput(render_value=False),
        help_text="From your custom app's API credentials; it signs the webhooks.",
    )


def _context(request: HttpRequest, **extra) -> dict:
    tenant = request.tenant
    connections = connector_selectors.connections_by_platform()
    can_manage = can(request.membership.role, "manage_api_keys")
    shopify = connections.get(Platform.SHOPIFY)
    return {
        "can_manage": can_manage,
        "can_download": can(request.membership.role, "manage_members"),
        "woo": connections.get(Platform.WOOCOMMERCE),
        "shopify": shopify,
        "woo_url": connector_selectors.webhook_url(tenant, Platform.WOOCOMMERCE),
        "shopify_url": connector_selectors.webhook_url(tenant, Platform.SHOPIFY),
        "woo_topics": connector_selectors.WOO_TOPICS,
        "shopify_topics": connector_selectors.SHOPIFY_TOPICS,
        "shopify_privacy_topics": connector_selectors.SHOPIFY_PRIVACY_TOPICS,
        "woo_form": extra.pop("woo_form", None) or WooCommerceForm(),
        "shopify_form": extra.pop("shopify_form", None)
        or ShopifyForm(initial={"shop_domain": shopify.shop_domain if shopify else ""}),
        "deliveries": connector_selectors.delivery_list(),
        "data_requests": connector_selectors.data_request_list()[:30],
        **extra,
    }


@store_member_required("view")
def integrations(request: HttpRequest) -> HttpResponse:
    return render(request, TEMPLATE, _context(request))


@require_POST
@store_member_required("manage_api_keys")
def woocommerce_secret_generate(request: HttpRequest) -> HttpResponse:
    form = WooCommerceForm(request.POST)
    if form.is_valid():
        _, secret = connector_services.connection_woocommerce_secret_generate(
            site_url=form.cleaned_data["site_url"], acting_user=request.user, request=request
        )
        return render(request, TEMPLATE, _context(request, created_secret=secret))
    return render(request, TEMPLATE, _context(request, woo_form=form), status=400)


@require_POST
@store_member_required("manage_api_keys")
def shopify_secret_set(request: HttpRequest) -> HttpResponse:
    form = ShopifyForm(request.POST)
    if form.is_valid():
        try:
            connector_services.connection_shopify_secret_set(
                secret=form.cleaned_data["secret"],
                shop_domain=form.cleaned_data["shop_domain"],
                acting_user=request.user,
                request=request,
            )
        except ApplicationError as exc:
            for field, messages in exc.fields.items():
                form.add_error(field if field in form.fields else None, messages)
        else:
            return render(request, TEMPLATE, _context(request, shopify_saved=True))
    return render(request, TEMPLATE, _context(request, shopify_form=form), status=400)


@store_member_required("manage_members")
def data_request_download(request: HttpRequest, request_id: int) -> HttpResponse:
    data_request = connector_selectors.data_request_get(request_id)
    if data_request is None:
        raise Http404("No such data request.")
    response = JsonResponse(
        {
            "platform": data_request.platform,
            "data_request": data_request.platform_request_id,
            "user_id": data_request.user_id,
            "received_at": data_request.received_at.isoformat(),
            "export": data_request.export,
        }
    )
    response["Content-Disposition"] = f'attachment; filename="data-request-{data_request.pk}.json"'
    response["Cache-Control"] = "no-store"
    return response
