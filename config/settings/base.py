"""Settings shared by every environment.

Behaviour is switched by environment variables (documented in `.env.example`), never by code
that exists only in one settings module.
"""

from config.settings.environment import BASE_DIR, env

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="")

# A store lives at <slug>.<BASE_DOMAIN>; the operators' site is BASE_DOMAIN itself.
BASE_DOMAIN = env("BASE_DOMAIN", default="localhost")
PUBLIC_SCHEME = env("PUBLIC_SCHEME", default="http")
PUBLIC_PORT = env("PUBLIC_PORT", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[BASE_DOMAIN, f".{BASE_DOMAIN}"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Applications -------------------------------------------------------------------------------
# Public schema: the platform (tenants, domains, users, plans, subscriptions, operator audit).
SHARED_APPS = [
    # Before django_tenants so our create_tenant command (cloned schema, owner) wins over its own.
    "apps.tenants",
    "django_tenants",
    "apps.core",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django.contrib.admin",
    "apps.users",
    "apps.audit",
    "apps.billing",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_prometheus",
    "channels",
]
# Store schemas: one copy of these tables per store.
TENANT_APPS = [
    "django.contrib.contenttypes",
    "apps.catalog",
    "apps.dashboard",
    "apps.audit",
    "apps.apikeys",
    "apps.notifications",
    "apps.recommendations",
    "apps.connectors",
    "apps.merchandising",
    "apps.batchjobs",
    "django_celery_beat",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
# A migrated, empty store schema; new stores replay the SQL recorded while building it
# (apps/tenants/schema_recipe.py) instead of running every migration.
STORE_TEMPLATE_SCHEMA = "tenant_template"
# setup_platform replays a new store migration into this many stores at once, each replay
# connection giving up on a lock after this long (apps/tenants/store_migrations.py).
STORE_MIGRATION_CONNECTIONS = env.int("STORE_MIGRATION_CONNECTIONS", default=4)
STORE_MIGRATION_LOCK_TIMEOUT_MS = env.int("STORE_MIGRATION_LOCK_TIMEOUT_MS", default=5000)
SHOW_PUBLIC_IF_NO_TENANT_FOUND = False
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
ROOT_URLCONF = "config.urls_tenant"

MIDDLEWARE = [
    # First: every log line of the request carries its id (X-Request-ID, echoed back).
    "apps.core.log_context.RequestIdMiddleware",
    "apps.core.middleware.ProbeMiddleware",
    "apps.core.metrics.RequestMetricsMiddleware",
    "apps.tenants.middleware.TenantMiddleware",
    # CORS of the SDK's paths from the store's publishable keys' origins (preflights end here).
    "apps.apikeys.publishable.PublishableCorsMiddleware",
    # Counts each store /api/ request (status included) for usage anomaly detection.
    "apps.notifications.middleware.ApiUsageMiddleware",
    "apps.tenants.middleware.SuspendedTenantMiddleware",
    # 400 naming the field for a path that is not UTF-8 or a NUL in the path or query.
    "apps.core.middleware.RequestInputMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Session, authentication and messages step aside for cookieless /api/ calls
    # (integrations): nothing of theirs applies there.
    # The JSON 404 body for /api/ paths even with DEBUG on (its technical page is HTML).
    "apps.core.middleware.ApiNotFoundMiddleware",
    "apps.core.middleware.SessionMiddleware",
    # Django's, without the slash-appending redirect for writes to /api/ (it drops the body).
    "apps.core.middleware.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "apps.core.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Every store request of a signed-in user is checked against the store's memberships.
    "apps.users.middleware.StoreMembershipMiddleware",
    "apps.core.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.core.context_processors.platform",
                "apps.users.context_processors.store_switcher",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

# --- Data stores --------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/shelfsense")
}
# django-tenants' backend, made safe behind PgBouncer in transaction mode (apps/core/db/base.py).
DATABASES["default"]["ENGINE"] = "apps.core.db"
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Server processes share a bounded psycopg connection pool per process (Django's `pool` option):
# persistent per-thread connections leak under ASGI, whose thread pool grows with load (82
# connections from 8 clients, then "too many clients", issue 13). The entry points name the
# process: config/wsgi.py "web" (granian, deploy/web.sh), config/asgi.py "asgi" (uvicorn: the
# websocket service and `make run`). Anything else (manage.py, Celery, pytest) keeps plain
# connections: a prefork Celery child runs one task at a time and Celery's Django fixup closes
# its connection (and would close a pool) after every task, so a worker holds at most
# --concurrency connections. django-tenants clears its search_path flag on close(), so a pooled
# connection gets the borrowing request's schema on its first cursor (tests/core/test_db_pool.py).
SERVER_PROCESS = env("SHELFSENSE_PROCESS", default="")
# DATABASE_POOLER_URL: PgBouncer in transaction mode, for the web and websocket servers only.
# They then run every statement in a transaction carrying its store's search_path, with no
# prepared statements and no server-side cursors (apps/core/db/base.py). Workers, beat and
# migrations stay on DATABASE_URL: the training lock and long tasks need a session.
if SERVER_PROCESS in ("web", "asgi") and env("DATABASE_POOLER_URL", default=""):
    DATABASES["default"] = {
        **DATABASES["default"],
        **env.db("DATABASE_POOLER_URL"),
        "ENGINE": DATABASES["default"]["ENGINE"],
        "TRANSACTION_POOLING": True,
        "DISABLE_SERVER_SIDE_CURSORS": True,
    }
DB_POOL_SIZES = {
    "web": env.int("DB_POOL_SIZE_WEB", default=env.int("WEB_THREADS", default=2)),
    "asgi": env.int("DB_POOL_SIZE_ASGI", default=8),
}
if SERVER_PROCESS in DB_POOL_SIZES and env.bool("DB_POOL", default=True):
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # pooled connections go back to the pool instead
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(env.int("DB_POOL_MIN_SIZE", default=1), DB_POOL_SIZES[SERVER_PROCESS]),
        "max_size": DB_POOL_SIZES[SERVER_PROCESS],
        # A request waits this long for a free connection, then fails (503, not a new one).
        "timeout": env.float("DB_POOL_TIMEOUT_SECONDS", default=10.0),
        "max_idle": env.float("DB_POOL_MAX_IDLE_SECONDS", default=300.0),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
# django-tenants wraps this backend, so the Prometheus database metrics survive.
ORIGINAL_BACKEND = "django_prometheus.db.backends.postgresql"
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Shopper PII at rest (apps/core/pii.py): Fernet keys, comma-separated; the first encrypts, all
# decrypt (rotation). Required in production; unset elsewhere, a key derived from SECRET_KEY.
PII_ENCRYPTION_KEYS = env.list("PII_ENCRYPTION_KEYS", default=[])

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="ss"),
        # Every cache key carries the schema of the tenant that wrote it.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
            "IGNORE_EXCEPTIONS": False,
        },
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 reads with a 5 s socket timeout by default, exactly as long as
            # channels_redis' blocking receive waits: idle sockets would crash every 5 s.
            "hosts": [
                {"address": env("CHANNELS_REDIS_URL", default=REDIS_URL), "socket_timeout": 30}
            ],
            "prefix": env("CHANNELS_PREFIX", default="ss-channels"),
        },
    }
}

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
# Queues, routes, limits and the beat schedule: config/settings/celery_tasks.py.
from config.settings.celery_tasks import *  # noqa: E402, F403

# --- Recommendations ----------------------------------------------------------------------------
# A new model is activated only if its NDCG@10 beats the popularity baseline and is at most this
# much (absolute NDCG@10) below the active model's.
RECS_ACTIVATION_TOLERANCE = env.float("RECS_ACTIVATION_TOLERANCE", default=0.02)
# Training reads the events of this many days before the newest one.
RECS_TRAINING_WINDOW_DAYS = env.int("RECS_TRAINING_WINDOW_DAYS", default=1096)
# ALS settings the hyper-parameter search of one training fits (a count, not seconds, so results
# do not depend on the machine; stores over 2M events get proportionally fewer, at least 4).
RECS_TRAINING_SEARCH_TRIALS = env.int("RECS_TRAINING_SEARCH_TRIALS", default=12)
# After activation, top-100 lists are precomputed for shoppers active in the last N days (at
# most RECS_PRECOMPUTE_MAX_SHOPPERS, most recent first), kept RECS_CACHE_TTL_SECONDS in Redis.
RECS_PRECOMPUTE_ACTIVE_DAYS = env.int("RECS_PRECOMPUTE_ACTIVE_DAYS", default=30)
RECS_PRECOMPUTE_MAX_SHOPPERS = env.int("RECS_PRECOMPUTE_MAX_SHOPPERS", default=200_000)
RECS_CACHE_TTL_SECONDS = env.int("RECS_CACHE_TTL_SECONDS", default=7 * 24 * 3600)
# Private memory (MiB) the loaded models of one serving process may hold (LRU over (store,
# version)). Model arrays are memory-mapped from the artifact and shared, so they do not count;
# what loading builds (id dictionaries, normalised factors) does (apps/recommendations/model_store).
RECS_MODEL_CACHE_MB = env.int("RECS_MODEL_CACHE_MB", default=1024)

# --- Batch recommendation jobs (apps.batchjobs) -------------------------------------------------
# Shoppers per Celery task on the `batch` queue; how long a download link stays valid; at most
# this many shopper ids in one request; at most this many queued or running jobs per store.
BATCH_CHUNK_SIZE = env.int("BATCH_CHUNK_SIZE", default=2000)
BATCH_DOWNLOAD_LINK_SECONDS = env.int("BATCH_DOWNLOAD_LINK_SECONDS", default=3600)
BATCH_MAX_USER_IDS = env.int("BATCH_MAX_USER_IDS", default=100_000)
BATCH_MAX_ACTIVE_JOBS = env.int("BATCH_MAX_ACTIVE_JOBS", default=2)

# --- Notifications ------------------------------------------------------------------------------
# Outgoing webhooks: attempts per delivery, and the first retry delay (doubled after each failure).
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_BACKOFF_SECONDS = env.float("WEBHOOK_BACKOFF_SECONDS", default=30.0)
# Allow webhook URLs on loopback/private addresses (tests, local development only).
WEBHOOK_ALLOW_PRIVATE_HOSTS = env.bool("WEBHOOK_ALLOW_PRIVATE_HOSTS", default=False)

# --- Billing (Stripe) ---------------------------------------------------------------------------
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
# Empty: Stripe itself. Set to another server (the tests' fake Stripe) for every base address.
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
# Pinned to the version stripe==16.1.0 defaults to; change together with the library.
STRIPE_API_VERSION = env("STRIPE_API_VERSION", default="2026-10-28.endive")
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env.int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", default=300)
STRIPE_INVOICE_CACHE_SECONDS = env.int("STRIPE_INVOICE_CACHE_SECONDS", default=600)
# Billing Meter event names per metric; empty: that metric is not reported to Stripe.
STRIPE_METER_EVENTS_INGESTED = env("STRIPE_METER_EVENTS_INGESTED", default="shelfsense_events")
STRIPE_METER_RECOMMENDATION_REQUESTS = env(
    "STRIPE_METER_RECOMMENDATION_REQUESTS", default="shelfsense_recommendation_requests"
)
# Days after a failed payment before ingestion pauses (until an invoice is paid).
BILLING_GRACE_DAYS = env.int("BILLING_GRACE_DAYS", default=7)

# --- Auth ---------------------------------------------------------------------------------------
AUTH_USER_MODEL = "users.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # orjson under the upload limit, nesting bounded; its refusals in the JSON error body.
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.JsonParser"],
    "EXCEPTION_HANDLER": "apps.core.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
# API keys: rows cached per process this long (revocations reach other processes at once via
# Redis); requests allowed per key ("N/s", "N/min", "N/hour"; empty = unlimited).
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=5.0)
API_KEY_RATE_LIMIT = env("API_KEY_RATE_LIMIT", default="300/s")
# Publishable keys (browsers, the SDK): requests allowed per key and per client address.
PUBLISHABLE_KEY_RATE_LIMIT = env("PUBLISHABLE_KEY_RATE_LIMIT", default="100/s")
PUBLISHABLE_IP_RATE_LIMIT = env("PUBLISHABLE_IP_RATE_LIMIT", default="20/s")
# A recommendation list request skips the middleware that has nothing to do for it
# (apps.recommendations.express); false sends it through the whole chain like any request.
SERVING_EXPRESS_LANE = env.bool("SERVING_EXPRESS_LANE", default=True)
# Header a trusted proxy sets to the client address (e.g. X-Forwarded-For); empty: REMOTE_ADDR.
TRUSTED_CLIENT_IP_HEADER = env("TRUSTED_CLIENT_IP_HEADER", default="")

SPECTACULAR_SETTINGS = {
    "TITLE": "ShelfSense API",
    "DESCRIPTION": (
        "Catalog, events and recommendations for one store, on the store's own host.\n\n"
        "Authenticate with `Authorization: Bearer <API key>` (a secret key `ss_live_…` from "
        "the API keys page; Swagger: **Authorize** → ApiKey). Browsers use a publishable key "
        "(`ss_pub_…`) through the SDK at `/sdk/v1/shelfsense.js`. Every error answers "
        '`{"error": {"code", "message", "fields"}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every 4xx documented with the one error body, and a tag per area (apps/core/openapi.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.openapi.postprocess_errors_and_tags",
    ],
    # Swagger UI: the key given to "Authorize" survives a reload.
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "displayOperationId": True},
    # Named enums where a bare field name (`status`) would collide between areas.
    "ENUM_NAME_OVERRIDES": {"BatchJobStatus": "apps.batchjobs.models.BatchJob.Status"},
}

# --- Web ----------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Files: model artifacts and batch exports, on disk or in S3 (config/settings/files.py).
from config.settings.files import *  # noqa: E402, F403

DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Live dashboard counters: at most one push per store and process per this many seconds.
LIVE_PUBLISH_INTERVAL_SECONDS = env.float("LIVE_PUBLISH_INTERVAL_SECONDS", default=0.5)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HTTPS hardening: off here, on by default in production (config/settings/production.py).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # probes: plain HTTP
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Outgoing email and its one-URL form (config/settings/mail.py).
from config.settings.mail import *  # noqa: E402, F403

# --- Accounts (django-allauth; users live in the public schema) --------------------------------
# Sign-in, signup, verification, reset and MFA pages live on the public site (BASE_DOMAIN).
# A store host gets its own session through a one-time signed hand-off link (apps.users.handoff):
# browsers refuse a cookie for ".localhost", and stores may later sit on their own domains.
# With a real dotted BASE_DOMAIN, SESSION_COOKIE_DOMAIN=".example.com" shares one session too.
SESSION_COOKIE_DOMAIN = env("SESSION_COOKIE_DOMAIN", default=None) or None
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
ACCOUNT_ADAPTER = "apps.users.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "apps.users.adapters.SocialAccountAdapter"
ACCOUNT_FORMS = {"signup": "apps.users.forms.SignupForm"}
SOCIALACCOUNT_FORMS = {"signup": "apps.users.forms.SocialSignupForm"}
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[ShelfSense] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = PUBLIC_SCHEME
# allauth's defaults (login failures per IP and per account, signups, resets...), stated here.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "request_login_code": "20/m/ip,3/m/key",
    "change_password": "5/m/user",
}
ALLAUTH_TRUSTED_CLIENT_IP_HEADER = TRUSTED_CLIENT_IP_HEADER or None
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "ShelfSense"
# Google / GitHub sign-in: on only when both the client id and secret are set.
SOCIALACCOUNT_PROVIDERS: dict = {}
SOCIALACCOUNT_AUTO_SIGNUP = False  # a social signup still names its store
SOCIALACCOUNT_LOGIN_ON_GET = False
for _provider, _prefix in (("google", "GOOGLE"), ("github", "GITHUB")):
    _client_id = env(f"{_prefix}_CLIENT_ID", default="")
    _secret = env(f"{_prefix}_CLIENT_SECRET", default="")
    if _client_id and _secret:
        INSTALLED_APPS.append(f"allauth.socialaccount.providers.{_provider}")
        SOCIALACCOUNT_PROVIDERS[_provider] = {
            "APPS": [{"client_id": _client_id, "secret": _secret, "key": ""}],
            "SCOPE": ["profile", "email"] if _provider == "google" else ["user:email"],
        }
# Invitations expire after this many days; store hand-off links after this many seconds.
INVITATION_MAX_AGE_DAYS = env.int("INVITATION_MAX_AGE_DAYS", default=7)
LOGIN_HANDOFF_MAX_AGE_SECONDS = 60

# /metrics needs this bearer token; with none set, metrics are not served.
METRICS_TOKEN = env("METRICS_TOKEN", default="")

# LOG_FORMAT=json: one JSON object a line with the store and the request (or task) id
# (apps/core/log_context.py); plain text otherwise.
LOG_FORMAT = env("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "apps.core.log_context.LogContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "apps.core.log_context.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
