"""Reads on the current store's API keys."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.apikeys.models import ApiKey, IdentitySecret


def api_key_list() -> QuerySet[ApiKey]:
    return ApiKey.objects.all()


def api_key_get(*, api_key_id: int) -> ApiKey | None:
    return ApiKey.objects.filter(pk=api_key_id).first()


def identity_secret_exists() -> bool:
    return IdentitySecret.objects.exists()
