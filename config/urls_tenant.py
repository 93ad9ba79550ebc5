"""URLs of a store, served on <slug>.<BASE_DOMAIN> with the store's schema active."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.apikeys.sdk import sdk_script
from apps.apikeys.urls import api_urlpatterns as apikeys_api_urls
from apps.apikeys.urls import page_urlpatterns as apikeys_page_urls
from apps.core.views import favicon
from apps.recommendations.urls import (
    analytics_urlpatterns,
    experiment_urlpatterns,
    recommendation_urlpatterns,
)
from apps.users.urls import store_account_urlpatterns, team_urlpatterns

urlpatterns = [
    # First: the recommendation endpoints are the serving hot path.
    path("api/v1/recommendations/", include(recommendation_urlpatterns)),
    path("api/v1/recommendations/", include("apps.batchjobs.urls")),
    path("api/v1/experiments/", include(experiment_urlpatterns)),
    path("api/v1/analytics/", include(analytics_urlpatterns)),
    path("api/v1/placements/", include("apps.merchandising.urls")),
    # The store's dashboard: overview at "/", then catalog, shoppers, audit, settings...
    path("", include("apps.dashboard.urls")),
    path("api-keys/", include((apikeys_page_urls, "apikeys"))),
    path("favicon.ico", favicon),
    path("team/", include((team_urlpatterns, "users"))),
    path("accounts/", include(store_account_urlpatterns)),
    path("billing/", include("apps.billing.urls")),
    # WooCommerce / Shopify webhooks: signed with the store's secret, no API key.
    path("api/v1/connectors/", include("apps.connectors.urls")),
    path("api/v1/", include(apikeys_api_urls)),
    path("api/v1/", include("apps.catalog.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("sdk/v1/shelfsense.js", sdk_script, name="sdk-v1"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

handler404 = "apps.core.views.not_found"
# allauth answers its rate limits through ROOT_URLCONF's handler429, on every host.
handler429 = "apps.users.ratelimits.rate_limited"
handler500 = "apps.core.views.server_error"
