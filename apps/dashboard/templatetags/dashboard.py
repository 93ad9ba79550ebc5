"""The store navigation: only pages that exist in this deployment and that the member's role
may open (apps.users.permissions matrix)."""

from __future__ import annotations

import json

from django import template
from django.urls import NoReverseMatch, reverse

from apps.notifications.selectors import notification_unread_count
from apps.users.permissions import can

register = template.Library()

# (url name, label, action the page needs)
NAV = (
    ("dashboard:overview", "Overview", "view"),
    ("dashboard:items", "Catalog", "view"),
    ("dashboard:shoppers", "Shoppers", "view"),
    ("dashboard:models", "Models", "view"),
    ("dashboard:experiments", "Experiments", "view"),
    ("dashboard:batch-jobs", "Batch jobs", "view"),
    ("dashboard:placements", "Placements", "view"),
    ("apikeys:list", "API keys", "manage_api_keys"),
    ("users:team", "Team", "view"),
    ("dashboard:audit", "Audit log", "view"),
    ("dashboard:notifications", "Notifications", "view"),
    ("dashboard:settings", "Settings", "view"),
    ("billing:overview", "Billing", "manage_billing"),
)


@register.inclusion_tag("dashboard/partials/nav.html", takes_context=True)
def store_nav(context: template.Context) -> dict:
    request = context["request"]
    role = request.membership.role
    links = []
    for name, label, action in NAV:
        if not can(role, action):
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        current = request.path == url if url == "/" else request.path.startswith(url)
        links.append({"url": url, "label": label, "current": current, "name": name})
    return {"links": links, "unread": notification_unread_count(user=request.user)}


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """0.0342 → "3.4%"; None (no denominator) → an en dash."""
    if value is None:
        return "\u2013"
    return f"{value * 100:.{digits}f}%"


@register.filter
def get_item(mapping: dict | None, key: str):
    """`row.metrics|get_item:"ndcg@10"`: dictionary keys templates cannot spell."""
    return mapping.get(key) if mapping else None


@register.filter
def as_json(value) -> str:
    """Stored JSON (audit details) as JSON text, not Python's repr of a dict."""
    if value in (None, "", {}):
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
