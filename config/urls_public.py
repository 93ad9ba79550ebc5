"""URLs of the operators' site (the public schema, served on BASE_DOMAIN)."""

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.billing.views import stripe_webhook
from apps.core.views import favicon
from apps.tenants.views import platform_home
from apps.users.urls import public_urlpatterns as users_public_urls
from apps.users.views import LoginView, signup

# Operators sign in through allauth like everyone else: MFA, lockouts and the audit trail's
# `auth.login` apply to the admin too.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon),
    path("billing/stripe/webhook/", stripe_webhook, name="stripe-webhook"),
    # Signup also creates the user's store; the rest is allauth's (login, codes, reset, MFA).
    path("accounts/signup/", signup, name="account_signup"),
    # allauth's, answering a locked account with 429 and Retry-After.
    path("accounts/login/", LoginView.as_view(), name="account_login"),
    path("accounts/", include("allauth.urls")),
    # The API reference before sign-up: the stores' API, read from the store URLConf.
    path(
        "api/schema/",
        SpectacularAPIView.as_view(urlconf="config.urls_tenant"),
        name="api-schema",
    ),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include(users_public_urls)),
    path("", platform_home, name="platform-home"),
]

handler404 = "apps.core.views.not_found"
handler429 = "apps.users.ratelimits.rate_limited"
handler500 = "apps.core.views.server_error"
