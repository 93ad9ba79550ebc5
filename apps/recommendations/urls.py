"""Mounted by config/urls_tenant.py at /api/v1/recommendations/ and /api/v1/experiments/."""

from django.urls import path

from apps.recommendations import apis

recommendation_urlpatterns = [
    path("users/<str:user_id>", apis.ShopperRecommendationsApi.as_view(), name="recs-user"),
    path("users/<str:user_id>/buy-again", apis.BuyAgainApi.as_view(), name="recs-buy-again"),
    path("items/<str:item_id>/similar", apis.SimilarItemsApi.as_view(), name="recs-similar"),
    path(
        "items/<str:item_id>/bought-together",
        apis.BoughtTogetherApi.as_view(),
        name="recs-bought-together",
    ),
    path("trending", apis.TrendingApi.as_view(), name="recs-trending"),
    path("models", apis.ModelVersionListApi.as_view(), name="recs-models"),
    path("models/train", apis.ModelTrainApi.as_view(), name="recs-models-train"),
    path("models/rollback", apis.ModelRollbackApi.as_view(), name="recs-models-rollback"),
    path(
        "models/<int:number>/activate", apis.ModelActivateApi.as_view(), name="recs-models-activate"
    ),
]

experiment_urlpatterns = [
    path("", apis.ExperimentListApi.as_view(), name="experiments"),
    path("<int:experiment_id>", apis.ExperimentDetailApi.as_view(), name="experiment-detail"),
    path("<int:experiment_id>/stop", apis.ExperimentStopApi.as_view(), name="experiment-stop"),
    path(
        "<int:experiment_id>/results",
        apis.ExperimentResultsApi.as_view(),
        name="experiment-results",
    ),
]
