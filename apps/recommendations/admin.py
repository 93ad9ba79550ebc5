"""The recommendations' line on the operators' store page (apps.tenants.store_facts)."""

from __future__ import annotations

from django_tenants.utils import tenant_context

from apps.recommendations.models import ModelVersion
from apps.tenants.models import Tenant
from apps.tenants.store_facts import store_fact_register


def _models_fact(tenant: Tenant) -> str:
    with tenant_context(tenant):
        active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
        latest = ModelVersion.objects.order_by("-number").first()
    if latest is None:
        return "never trained"
    text = f"v{active.number} active" if active is not None else "none active"
    if latest != active:
        text += f"; latest v{latest.number} {latest.get_status_display().lower()}"
        if latest.finished_at:
            text += f" at {latest.finished_at:%Y-%m-%d %H:%M} UTC"
    return text


store_fact_register("Models", _models_fact)
