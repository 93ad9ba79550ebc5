from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from apps.core.admin import ModelAdmin
from apps.tenants.models import Tenant
from apps.tenants.store_facts import store_fact_register
from apps.users.models import Membership, User
from apps.users.selectors import store_members, store_pending_invitations


def _members_fact(tenant: Tenant) -> str:
    members = [f"{m.user.email} ({m.get_role_display()})" for m in store_members(tenant=tenant)]
    waiting = store_pending_invitations(tenant=tenant).count()
    text = ", ".join(members) or "none"
    return f"{text}; {waiting} invitation(s) pending" if waiting else text


store_fact_register("Members", _members_fact)


@admin.register(User)
class UserAdmin(ModelAdmin, BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "full_name", "is_staff", "is_active", "date_joined")
    list_filter = ("is_staff", "is_active")
    search_fields = ("email", "full_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(Membership)
class MembershipAdmin(ModelAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "tenant__slug")
    raw_id_fields = ("user", "tenant")
