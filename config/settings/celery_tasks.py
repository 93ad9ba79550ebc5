"""Celery: queues, routes by exact task name, limits, delivery guarantees and beat's schedule.
Imported by base.py; every interval is an environment variable (documented in .env.example)."""

from celery.schedules import crontab

from config.settings.environment import env

CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
# Every task of ours by its exact (explicit, never changing) name: a rename or a moved module
# cannot silently send a task to another queue. Training and precompute wait on `training`; the
# rest, the impression copy included, run on the default queue. tests/core/test_celery_names.py
# checks every registered task has an entry here.
_TRAINING_TASKS = (
    "apps.recommendations.tasks.train_model_version",
    "apps.recommendations.tasks.train_nightly",
    "apps.recommendations.tasks.precompute_recommendations",
)
_DEFAULT_QUEUE_TASKS = (
    "apps.apikeys.tasks.api_keys_expiry_notify",
    "apps.notifications.tasks.notification_email_send",
    "apps.notifications.tasks.usage_anomaly_scan",
    "apps.notifications.tasks.usage_anomaly_scan_dispatch",
    "apps.notifications.tasks.webhook_deliver",
    "billing.stripe_event_process",
    "billing.stripe_events_retry",
    "billing.usage_rollup_and_report",
    "billing.usage_threshold_notify",
    "recommendations.impressions_persist",
    "recommendations.impressions_persist_dispatch",
)
# Batch recommendation jobs: a queue of their own, so an export never delays a training.
_BATCH_TASKS = (
    "apps.batchjobs.tasks.batch_job_start",
    "apps.batchjobs.tasks.batch_job_chunk",
    "apps.batchjobs.tasks.batch_job_finish",
)
CELERY_TASK_ROUTES = {
    **{name: {"queue": "training"} for name in _TRAINING_TASKS},
    **{name: {"queue": "batch"} for name in _BATCH_TASKS},
    **{name: {"queue": CELERY_TASK_DEFAULT_QUEUE} for name in _DEFAULT_QUEUE_TASKS},
}
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=1800)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=1500)
CELERY_TASK_ACKS_LATE = True
# A task whose worker process died (OOM, SIGKILL, a deploy) goes back to the queue instead of
# being acknowledged as failed: emails, webhook deliveries and Stripe events are re-run, never
# lost. Training caps its own restarts (TRAINING_MAX_STARTS), so a task that kills its worker
# cannot loop.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# With LOG_FORMAT=json the worker logs through Django's LOGGING (JSON, store and task id).
CELERY_WORKER_HIJACK_ROOT_LOGGER = env("LOG_FORMAT", default="plain") != "json"
# What a task prints (the console email backend's messages under `make run`) is logged at INFO,
# not at Celery's default WARNING: printed output is not a problem to look into.
CELERY_WORKER_REDIRECT_STDOUTS_LEVEL = "INFO"
# Our subclass of tenant-schemas-celery's database scheduler: each copy of an all-stores entry is
# sent with its store's schema (apps/tenants/beat.py says why the library's is not enough).
CELERY_BEAT_SCHEDULER = "apps.tenants.beat:StoreAwareDatabaseScheduler"
# Beat rereads every schema's rows when a schedule changed, else at this interval (a safety net
# for a change made without Django's signals); django-celery-beat alone rereads every 5 minutes.
BEAT_FULL_RELOAD_SECONDS = env.int("BEAT_FULL_RELOAD_SECONDS", default=3600)
CELERY_TIMEZONE = "UTC"
# API keys expiring within 7 days are notified daily at 08:00 UTC, or every N seconds when
# API_KEYS_EXPIRY_NOTIFY_SECONDS is set (system tests shorten it).
_API_KEYS_EXPIRY_NOTIFY_SECONDS = env.float("API_KEYS_EXPIRY_NOTIFY_SECONDS", default=0.0)
# Periodic tasks; an entry without "tenant_schemas" runs in every store's schema. Every interval
# is an environment variable (documented in .env.example). Frequent work goes only to the
# stores that had activity (apps/core/activity.py): one public task sends it to them, so an
# idle platform costs the same whatever its number of stores; only daily jobs go to every store.
CELERY_BEAT_SCHEDULE = {
    # Stores with API traffic within the last hour (the `drop` rule sees a store go quiet).
    "usage-anomaly-scan": {
        "task": "apps.notifications.tasks.usage_anomaly_scan_dispatch",
        "schedule": env.float("USAGE_ANOMALY_SCAN_SECONDS", default=60.0),
        "tenant_schemas": ["public"],
    },
    # One notification per key (remembered on the key), every store.
    "api-keys-expiry-notify": {
        "task": "apps.apikeys.tasks.api_keys_expiry_notify",
        "schedule": _API_KEYS_EXPIRY_NOTIFY_SECONDS or crontab(minute=0, hour=8),
    },
    # Served-list log: Redis buffer → PostgreSQL (COPY), stores that logged impressions.
    "recommendation-impressions-persist": {
        "task": "recommendations.impressions_persist_dispatch",
        "schedule": env.float("RECS_IMPRESSIONS_PERSIST_SECONDS", default=30.0),
        "tenant_schemas": ["public"],
    },
    # Billing (public schema): usage counters → UsageRecord → Stripe Billing Meters, hourly;
    # webhook events whose processing was lost or exhausted its retries, every 15 minutes.
    "billing-usage-rollup-and-report": {
        "task": "billing.usage_rollup_and_report",
        "schedule": env.float("BILLING_USAGE_ROLLUP_SECONDS", default=3600.0),
        "tenant_schemas": ["public"],
    },
    "billing-stripe-events-retry": {
        "task": "billing.stripe_events_retry",
        "schedule": env.float("BILLING_STRIPE_EVENTS_RETRY_SECONDS", default=900.0),
        "tenant_schemas": ["public"],
    },
}
