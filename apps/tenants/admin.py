from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from apps.core.admin import ModelAdmin
from apps.tenants.models import Domain, Tenant
from apps.tenants.services import tenant_reactivate, tenant_suspend
from apps.tenants.store_facts import store_facts


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Tenant)
class TenantAdmin(ModelAdmin):
    list_display = ("slug", "name", "status", "schema_name", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("slug", "name", "schema_name", "domains__domain")
    readonly_fields = ("schema_name", "created_at", "updated_at", "facts")
    inlines = [DomainInline]
    actions = ["suspend_stores", "reactivate_stores"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        # The public schema holds the platform, not a store.
        return super().get_queryset(request).exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)

    @admin.display(description="Plan, usage, members and models")
    def facts(self, obj: Tenant) -> str:
        rows = store_facts(obj)
        if not rows:
            return "-"
        return format_html(
            "<table>{}</table>",
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Stores are provisioned by `create_tenant` or signup, which clone the template schema.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        return False

    @admin.action(description="Suspend selected stores")
    def suspend_stores(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        stores = [tenant for tenant in queryset if not tenant.is_public]
        for tenant in stores:
            tenant_suspend(
                tenant=tenant,
                reason=f"Suspended by {request.user}",
                acting_user=request.user,
                request=request,
            )
        self.message_user(request, f"Suspended {len(stores)} store(s).", messages.SUCCESS)

    @admin.action(description="Reactivate selected stores")
    def reactivate_stores(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            tenant_reactivate(tenant=tenant, acting_user=request.user, request=request)
        self.message_user(request, f"Reactivated {queryset.count()} store(s).", messages.SUCCESS)


@admin.register(Domain)
class DomainAdmin(ModelAdmin):
    list_display = ("domain", "tenant", "is_primary")
    list_filter = ("is_primary",)
    search_fields = ("domain", "tenant__slug")
