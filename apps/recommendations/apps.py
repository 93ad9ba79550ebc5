from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "apps.recommendations"
    label = "recommendations"

    def ready(self) -> None:
        from apps.core import erasure
        from apps.recommendations import erasure as erasers

        erasure.register(
            "recommendation_lists",
            erasers.shopper_lists_erase,
            key_families=("recommendation-lists",),
        )
        erasure.register(
            "impressions",
            erasers.shopper_impressions_erase,
            models=("recommendations.Impression",),
            key_families=("impression-buffer",),
        )
