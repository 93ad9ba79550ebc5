"""What several dashboard pages share: pagination."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest

PAGE_SIZE = 25


def paginate(
    request: HttpRequest, queryset: QuerySet | Sequence[Any], size: int = PAGE_SIZE
) -> Page:
    """The page of `queryset` named by the request's `?page=` (the last one when out of range)."""
    return Paginator(queryset, size).get_page(request.GET.get("page"))
