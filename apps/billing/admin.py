"""Operators' billing screens: plans (editable), subscriptions per store with a monthly
recurring revenue summary, Stripe events and usage (read-only: mirrored or computed)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.billing.entitlements import store_plan
from apps.billing.models import Metric, Plan, StripeEvent, Subscription, UsageRecord
from apps.billing.selectors import mrr_summary, subscription_of, usage_month_to_date
from apps.billing.services import subscription_sync
from apps.core.admin import ModelAdmin
from apps.core.errors import ApplicationError
from apps.tenants.models import Tenant
from apps.tenants.store_facts import store_fact_register


def _plan_fact(tenant: Tenant) -> str:
    sub = subscription_of(tenant)
    plan = store_plan(tenant)
    return f"{plan.name} ({sub.status})" if sub is not None else f"{plan.name} (never subscribed)"


def _usage_fact(tenant: Tenant) -> str:
    plan = store_plan(tenant)
    used = usage_month_to_date(tenant)
    parts = []
    for metric in Metric:
        quota = plan.quota_for(metric)
        limit = f" of {quota:,}" if quota is not None else ""
        parts.append(f"{metric.label}: {used[metric.value]:,}{limit}")
    return " · ".join(parts)


store_fact_register("Plan", _plan_fact)
store_fact_register("Usage this month", _usage_fact)


class ReadOnlyAdmin(ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Plan)
class PlanAdmin(ModelAdmin):
    list_display = (
        "name",
        "code",
        "price_display",
        "events_per_month",
        "recommendation_requests_per_month",
        "trainings_per_day",
        "team_seats",
        "overage_billed",
        "is_public",
        "stripe_price_id",
    )
    list_filter = ("overage_billed", "is_public")
    search_fields = ("code", "name", "stripe_price_id")
    fieldsets = (
        (None, {"fields": ("code", "name", "sort_order", "is_public")}),
        (
            "Stripe",
            {
                "fields": (
                    "stripe_price_id",
                    "stripe_metered_price_id",
                    "monthly_price_cents",
                    "currency",
                )
            },
        ),
        (
            "Monthly quotas (empty = unlimited)",
            {
                "fields": (
                    "events_per_month",
                    "recommendation_requests_per_month",
                    "trainings_per_day",
                    "team_seats",
                    "overage_billed",
                )
            },
        ),
        ("Features", {"fields": ("feature_ab_tests", "feature_webhooks")}),
    )

    def has_delete_permission(self, request: HttpRequest, obj: Plan | None = None) -> bool:
        # Subscriptions protect their plan; a plan is retired by un-ticking "is public".
        return False


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    change_list_template = "billing/admin/subscription_change_list.html"
    list_display = (
        "tenant",
        "plan",
        "status",
        "current_period_end",
        "cancel_at_period_end",
        "trial_end",
        "grace_until",
        "stripe_customer_id",
        "synced_at",
    )
    list_filter = ("status", "plan", "cancel_at_period_end")
    search_fields = ("tenant__slug", "tenant__name", "stripe_customer_id", "stripe_subscription_id")
    list_select_related = ("tenant", "plan")
    actions = ["resync_from_stripe"]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {**(extra_context or {}), "mrr": mrr_summary()}
        return super().changelist_view(request, extra_context=extra_context)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # The change list needs it for actions; the form stays read-only (fields below).
        return obj is None and super(ReadOnlyAdmin, self).has_change_permission(request, obj)

    @admin.action(description="Re-read subscription state from Stripe")
    def resync_from_stripe(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        synced = 0
        for sub in queryset.select_related("tenant"):
            try:
                subscription_sync(tenant=sub.tenant)
            except ApplicationError as exc:
                self.message_user(request, f"{sub.tenant.slug}: {exc.message}", messages.WARNING)
            else:
                synced += 1
        self.message_user(request, f"Re-synced {synced} subscription(s).", messages.SUCCESS)


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ("stripe_id", "type", "status", "tenant", "stripe_created_at", "attempts")
    list_filter = ("status", "type")
    search_fields = ("stripe_id", "tenant__slug")
    list_select_related = ("tenant",)


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "metric", "hour", "quantity", "report_status", "reported_at")
    list_filter = ("metric", "report_status")
    search_fields = ("tenant__slug",)
    list_select_related = ("tenant",)
    date_hierarchy = "hour"
