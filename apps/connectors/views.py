"""The webhook endpoints, one per platform on every store's host
(`/api/v1/connectors/<platform>/webhook`). No API key: a delivery is authenticated by its
signature with the store's own secret, over the raw body."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.connectors.models import Platform
from apps.connectors.services import WebhookRequest, webhook_receive
from apps.core.errors import ApplicationError, error_body, json_error_response


def _receive(request: HttpRequest, platform: str) -> HttpResponse:
    try:
        body = request.body
    except RequestDataTooBig:
        return json_error_response(
            "too_large", "The request body is larger than the upload limit.", 413
        )
    try:
        answer = webhook_receive(
            WebhookRequest(platform=platform, body=body, headers=request.headers)
        )
    except ApplicationError as exc:
        return JsonResponse(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
    return JsonResponse(answer)


@csrf_exempt
@require_POST
def woocommerce_webhook(request: HttpRequest) -> HttpResponse:
    return _receive(request, Platform.WOOCOMMERCE)


@csrf_exempt
@require_POST
def shopify_webhook(request: HttpRequest) -> HttpResponse:
    return _receive(request, Platform.SHOPIFY)
