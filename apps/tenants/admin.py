from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.tenants.models import Domain, Tenant
from apps.tenants.services import tenant_reactivate, tenant_suspend


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "status", "schema_name", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("slug", "name", "schema_name", "domains__domain")
    readonly_fields = ("schema_name", "created_at", "updated_at")
    inlines = [DomainInline]
    actions = ["suspend_stores", "reactivate_stores"]

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
class DomainAdmin(admin.ModelAdmin):
    list_display = ("domain", "tenant", "is_primary")
    list_filter = ("is_primary",)
    search_fields = ("domain", "tenant__slug")
