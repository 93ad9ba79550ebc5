"""URLs of the operators' site (the public schema, served on BASE_DOMAIN)."""

from django.contrib import admin
from django.urls import include, path

from apps.billing.views import stripe_webhook
from apps.tenants.views import platform_home
from apps.users.urls import public_urlpatterns as users_public_urls
from apps.users.views import LoginView, signup

urlpatterns = [
    path("admin/", admin.site.urls),
    path("billing/stripe/webhook/", stripe_webhook, name="stripe-webhook"),
    # Signup also creates the user's store; the rest is allauth's (login, codes, reset, MFA).
    path("accounts/signup/", signup, name="account_signup"),
    # allauth's, answering a locked account with 429 and Retry-After.
    path("accounts/login/", LoginView.as_view(), name="account_login"),
    path("accounts/", include("allauth.urls")),
    path("", include(users_public_urls)),
    path("", platform_home, name="platform-home"),
]

handler404 = "apps.core.views.not_found"
handler429 = "apps.users.ratelimits.rate_limited"
handler500 = "apps.core.views.server_error"
