from django.contrib import admin
from django.http import HttpRequest

from apps.audit.models import AuditEvent
from apps.core.admin import ModelAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ModelAdmin):
    """Operators read the public schema's trail; nobody edits it (the database refuses too)."""

    list_display = ("occurred_at", "action", "actor_label", "target_type", "target_id", "ip")
    list_filter = ("action", "actor_type")
    search_fields = ("action", "actor_label", "target_type", "target_id", "request_id")
    date_hierarchy = "occurred_at"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
