"""Mounted by config/urls_tenant.py at /api/v1/recommendations/, /api/v1/experiments/ and
/api/v1/analytics/."""

from django.urls import path

from apps.recommendations import apis, manage_apis

recommendation_urlpatterns = [
    # Ids may contain "/" (apps.core.ids): each suffixed route comes before the bare one.
    path("users/<id:user_id>/buy-again", apis.BuyAgainApi.as_view(), name="recs-buy-again"),
    path("users/<id:user_id>", apis.ShopperRecommendationsApi.as_view(), name="recs-user"),
    path("items/<id:item_id>/similar", apis.SimilarItemsApi.as_view(), name="recs-similar"),
    path(
        "items/<id:item_id>/bought-together",
        apis.BoughtTogetherApi.as_view(),
        name="recs-bought-together",
    ),
    path(
        "sessions/<id:session_id>",
        apis.SessionRecommendationsApi.as_view(),
        name="recs-session",
    ),
    path("trending", apis.TrendingApi.as_view(), name="recs-trending"),
    path("models", manage_apis.ModelVersionListApi.as_view(), name="recs-models"),
    path("models/train", manage_apis.ModelTrainApi.as_view(), name="recs-models-train"),
    path("models/rollback", manage_apis.ModelRollbackApi.as_view(), name="recs-models-rollback"),
    path(
        "models/<int:number>/activate",
        manage_apis.ModelActivateApi.as_view(),
        name="recs-models-activate",
    ),
]

experiment_urlpatterns = [
    path("", manage_apis.ExperimentListApi.as_view(), name="experiments"),
    path(
        "<int:experiment_id>", manage_apis.ExperimentDetailApi.as_view(), name="experiment-detail"
    ),
    path(
        "<int:experiment_id>/stop", manage_apis.ExperimentStopApi.as_view(), name="experiment-stop"
    ),
    path(
        "<int:experiment_id>/results",
        manage_apis.ExperimentResultsApi.as_view(),
        name="experiment-results",
    ),
]

analytics_urlpatterns = [
    path("summary", manage_apis.AnalyticsSummaryApi.as_view(), name="analytics-summary"),
]
