from django.urls import path

from apps.dashboard.views import (
    audit_log,
    batch,
    catalog,
    experiments,
    integrations,
    model_versions,
    notifications,
    overview,
    placements,
    store_settings,
    team,
)

app_name = "dashboard"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("catalog/", catalog.items, name="items"),
    path("catalog/<id:item_id>/", catalog.item_detail, name="item"),
    path("shoppers/", catalog.shoppers, name="shoppers"),
    path("shoppers/<id:user_id>/", catalog.shopper_detail, name="shopper"),
    path("models/", model_versions.models_page, name="models"),
    path("models/train/", model_versions.model_train, name="model-train"),
    path("models/rollback/", model_versions.model_rollback, name="model-rollback"),
    path("models/<int:number>/activate/", model_versions.model_activate, name="model-activate"),
    path("experiments/", experiments.experiments, name="experiments"),
    path("experiments/new/", experiments.experiment_create, name="experiment-create"),
    path("experiments/<int:experiment_id>/", experiments.experiment_detail, name="experiment"),
    path(
        "experiments/<int:experiment_id>/stop/", experiments.experiment_stop, name="experiment-stop"
    ),
    # The team page is apps.users' /team/; revoking an invitation is served from here.
    path(
        "team/invitations/<int:invitation_id>/revoke/",
        team.invitation_revoke_view,
        name="invitation-revoke",
    ),
    path("placements/", placements.placements, name="placements"),
    path("placements/new/", placements.placement_create, name="placement-create"),
    path("placements/preview/", placements.placement_preview, name="placement-preview"),
    path("placements/edit/<slug:name>/", placements.placement_edit, name="placement"),
    path("placements/delete/<slug:name>/", placements.placement_delete, name="placement-delete"),
    path("batch-jobs/", batch.batch_jobs, name="batch-jobs"),
    path("batch-jobs/<uuid:job_id>/cancel/", batch.batch_job_cancel, name="batch-job-cancel"),
    path("audit/", audit_log.audit, name="audit"),
    path("audit/export.csv", audit_log.audit_export, name="audit-export"),
    path("notifications/", notifications.notifications, name="notifications"),
    path("notifications/read/", notifications.notifications_read, name="notifications-read"),
    path("settings/", store_settings.settings_page, name="settings"),
    path("settings/store/", store_settings.settings_store, name="settings-store"),
    path("settings/currency/", store_settings.settings_currency, name="settings-currency"),
    path("settings/seen-types/", store_settings.settings_seen_types, name="settings-seen-types"),
    path("settings/preferences/", store_settings.settings_preferences, name="settings-preferences"),
    path("settings/integrations/", integrations.integrations, name="integrations"),
    path(
        "settings/integrations/woocommerce/",
        integrations.woocommerce_secret_generate,
        name="integrations-woocommerce",
    ),
    path(
        "settings/integrations/shopify/",
        integrations.shopify_secret_set,
        name="integrations-shopify",
    ),
    path(
        "settings/integrations/data-requests/<int:request_id>.json",
        integrations.data_request_download,
        name="integrations-data-request",
    ),
    path("settings/webhooks/", store_settings.webhook_create, name="webhook-create"),
    path(
        "settings/webhooks/<int:endpoint_id>/delete/",
        store_settings.webhook_delete,
        name="webhook-delete",
    ),
    path(
        "settings/webhooks/<int:endpoint_id>/rotate/",
        store_settings.webhook_rotate,
        name="webhook-rotate",
    ),
    path(
        "settings/deliveries/<int:delivery_id>/resend/",
        store_settings.delivery_resend,
        name="delivery-resend",
    ),
]
