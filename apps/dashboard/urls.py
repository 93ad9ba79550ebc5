from django.urls import path

from apps.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("catalog/", views.items, name="items"),
    path("catalog/<id:item_id>/", views.item_detail, name="item"),
    path("shoppers/", views.shoppers, name="shoppers"),
    path("shoppers/<id:user_id>/", views.shopper_detail, name="shopper"),
    path("models/", views.models_page, name="models"),
    path("models/train/", views.model_train, name="model-train"),
    path("models/rollback/", views.model_rollback, name="model-rollback"),
    path("models/<int:number>/activate/", views.model_activate, name="model-activate"),
    path("experiments/", views.experiments, name="experiments"),
    path("experiments/new/", views.experiment_create, name="experiment-create"),
    path("experiments/<int:experiment_id>/", views.experiment_detail, name="experiment"),
    path("experiments/<int:experiment_id>/stop/", views.experiment_stop, name="experiment-stop"),
    # The team page is apps.users' /team/; revoking an invitation is served from here.
    path(
        "team/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke_view,
        name="invitation-revoke",
    ),
    path("audit/", views.audit, name="audit"),
    path("audit/export.csv", views.audit_export, name="audit-export"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications-read"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/store/", views.settings_store, name="settings-store"),
    path("settings/currency/", views.settings_currency, name="settings-currency"),
    path("settings/preferences/", views.settings_preferences, name="settings-preferences"),
    path("settings/webhooks/", views.webhook_create, name="webhook-create"),
    path(
        "settings/webhooks/<int:endpoint_id>/delete/", views.webhook_delete, name="webhook-delete"
    ),
    path(
        "settings/webhooks/<int:endpoint_id>/rotate/", views.webhook_rotate, name="webhook-rotate"
    ),
    path(
        "settings/deliveries/<int:delivery_id>/resend/",
        views.delivery_resend,
        name="delivery-resend",
    ),
]
