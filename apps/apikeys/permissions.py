"""Scope checks for API-key requests.

    permission_classes = [RequireScope("ingest")]              # needs the ingest scope
    permission_classes = [RequireScope("ingest", "manage")]    # needs both
    permission_classes = [RequireScope.any()]                   # any valid key of this store

Without a valid key DRF answers 401 (ApiKeyAuthentication names the Bearer scheme); with a
key that lacks a scope, 403 `missing_scope` naming the scopes.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from apps.apikeys.models import ApiKey


class MissingScope(exceptions.PermissionDenied):
    default_code = "missing_scope"


def RequireScope(*scopes: str) -> type[BasePermission]:
    unknown = set(scopes) - set(ApiKey.Scope.values)
    if unknown:
        raise ValueError(f"Unknown API key scope(s): {sorted(unknown)}")
    required = tuple(scopes)

    class _RequireScope(BasePermission):
        def has_permission(self, request, view) -> bool:
            api_key = request.auth
            if not isinstance(api_key, ApiKey):
                return False
            missing = [scope for scope in required if scope not in api_key.scopes]
            if missing:
                raise MissingScope(
                    f"This API key lacks the scope: {', '.join(missing)}.", code="missing_scope"
                )
            return True

    _RequireScope.__name__ = f"RequireScope({', '.join(required) or 'any'})"
    return _RequireScope


RequireScope.any = lambda: RequireScope()  # type: ignore[attr-defined]
