"""One error type for services and one JSON error body for every API response.

Body: {"error": {"code": "...", "message": "...", "fields": {"field": ["message", ...]}}}
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """Raised by services and selectors when a request cannot be honoured.

    `status_code` is the HTTP status the API layer answers with; `fields` maps field names to
    messages when the problem lies in specific input fields.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        status_code: int = 400,
        fields: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code
        self.fields = fields or {}
        self.headers = headers or {}


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten_detail(detail: Any) -> Any:
    """DRF details are nested ErrorDetail lists/dicts; turn them into plain strings."""
    if isinstance(detail, dict):
        return {key: _flatten_detail(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten_detail(value) for value in detail]
    return str(detail)


def _validation_message(fields: dict[str, Any]) -> str:
    names = ", ".join(sorted(fields))
    return f"Invalid input in: {names}." if names else "Invalid input."


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(
            error_body(exc.code, exc.message, exc.fields),
            status=exc.status_code,
            headers=exc.headers,
        )
    if isinstance(exc, DjangoValidationError):
        fields = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        exc = exceptions.ValidationError(fields)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None

    if isinstance(exc, exceptions.ValidationError):
        detail = _flatten_detail(exc.detail)
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        response.data = error_body("invalid", _validation_message(fields), fields)
        return response

    detail = getattr(exc, "detail", "")
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    if not isinstance(code, str):
        code = "error"
    response.data = error_body(code, str(detail))
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        response.data["error"]["retry_after"] = int(exc.wait)
    return response


def json_error_response(code: str, message: str, status_code: int = status.HTTP_400_BAD_REQUEST):
    """The same body for plain Django views and middleware (outside DRF)."""
    from django.http import JsonResponse

    return JsonResponse(error_body(code, message), status=status_code)
