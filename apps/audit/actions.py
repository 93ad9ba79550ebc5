"""Every action the audit trail records (as Zulip's AuditLogEventType): `audit_record` accepts
only these members. The values are the strings stored in `AuditEvent.action`; never change one
(stored rows and exports keep the old value), add a member instead."""

from __future__ import annotations

from django.db import models


class AuditAction(models.TextChoices):
    # API keys
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    API_KEY_IDENTITY_SECRET_ROTATED = "api_key.identity_secret_rotated"  # noqa: S105 - an action name
    # The trail itself
    AUDIT_EXPORTED = "audit.exported"
    # Sign-in and MFA (operators' trail)
    AUTH_LOGIN = "auth.login"
    AUTH_LOGIN_FAILED = "auth.login_failed"
    MFA_ENABLED = "mfa.enabled"
    MFA_DISABLED = "mfa.disabled"
    MFA_RECOVERY_CODES_CREATED = "mfa.recovery_codes_created"
    MFA_RECOVERY_CODES_REMOVED = "mfa.recovery_codes_removed"
    MFA_RECOVERY_CODES_REGENERATED = "mfa.recovery_codes_regenerated"
    # Batch recommendation jobs
    BATCH_JOB_CREATED = "batch_job.created"
    BATCH_JOB_CANCELLED = "batch_job.cancelled"
    # Billing
    BILLING_CUSTOMER_CREATED = "billing.customer_created"
    BILLING_INVOICE_PAID = "billing.invoice_paid"
    BILLING_PAYMENT_ACTION_REQUIRED = "billing.payment_action_required"
    BILLING_PAYMENT_FAILED = "billing.payment_failed"
    BILLING_PAYMENT_RECOVERED = "billing.payment_recovered"
    BILLING_PLAN_CHANGED = "billing.plan_changed"
    BILLING_QUOTA_THRESHOLD_REACHED = "billing.quota_threshold_reached"
    BILLING_SUBSCRIPTION_UPDATED = "billing.subscription_updated"
    BILLING_TRIAL_WILL_END = "billing.trial_will_end"
    # Catalog
    ITEM_DELETED = "item.deleted"
    SHOPPER_ERASED = "shopper.erased"
    SHOPPER_EXPORTED = "shopper.exported"
    # Store connectors (WooCommerce, Shopify)
    CONNECTOR_CONNECTED = "connector.connected"
    CONNECTOR_SECRET_SET = "connector.secret_set"  # noqa: S105 - an action name
    CONNECTOR_CUSTOMER_REDACTED = "connector.customer_redacted"
    CONNECTOR_SHOP_REDACTED = "connector.shop_redacted"
    CONNECTOR_DATA_REQUESTED = "connector.data_requested"
    # Team
    MEMBER_INVITED = "member.invited"
    MEMBER_INVITATION_DECLINED = "member.invitation_declined"
    MEMBER_INVITATION_REVOKED = "member.invitation_revoked"
    MEMBER_JOINED = "member.joined"
    MEMBER_OWNERSHIP_TRANSFERRED = "member.ownership_transferred"
    MEMBER_REMOVED = "member.removed"
    MEMBER_ROLE_CHANGED = "member.role_changed"
    # Models and experiments
    MODEL_TRAINING_STARTED = "model.training_started"
    MODEL_TRAINED = "model.trained"
    MODEL_TRAINING_FAILED = "model.training_failed"
    MODEL_ACTIVATED = "model.activated"
    MODEL_ROLLED_BACK = "model.rolled_back"
    EXPERIMENT_CREATED = "experiment.created"
    EXPERIMENT_STOPPED = "experiment.stopped"
    # Merchandising
    PLACEMENT_CREATED = "placement.created"
    PLACEMENT_UPDATED = "placement.updated"
    PLACEMENT_DELETED = "placement.deleted"
    # Store settings
    STORE_RENAMED = "store.renamed"
    STORE_CURRENCY_CHANGED = "store.currency_changed"
    STORE_SEEN_TYPES_CHANGED = "store.seen_types_changed"
    # Stores (operators' trail)
    TENANT_CREATED = "tenant.created"
    TENANT_SUSPENDED = "tenant.suspended"
    TENANT_REACTIVATED = "tenant.reactivated"
    # Notifications
    USAGE_ANOMALY_FLAGGED = "usage.anomaly_flagged"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"  # noqa: S105 - an action name
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_RESENT = "webhook.resent"
