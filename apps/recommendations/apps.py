from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "apps.recommendations"
    label = "recommendations"

    def ready(self) -> None:
        from apps.catalog.signals import items_changed
        from apps.core import erasure
        from apps.recommendations import erasure as erasers
        from apps.recommendations import (
            receivers,
            schema,  # noqa: F401 (OpenAPI view extensions)
        )
        from apps.tenants.signals import store_ready

        items_changed.connect(receivers.on_items_changed, dispatch_uid="recommendations")
        store_ready.connect(receivers.on_store_ready, dispatch_uid="recommendations")
        erasure.register_export("recommendations", erasers.shopper_lists_export)

        erasure.register(
            "recommendation_lists",
            erasers.shopper_lists_erase,
            key_families=("recommendation-lists",),
        )
        erasure.register(
            "fresh_lists",
            erasers.shopper_fresh_lists_erase,
            key_families=("fresh-lists", "fresh-claims"),
        )
        erasure.register(
            "impressions",
            erasers.shopper_impressions_erase,
            models=("recommendations.Impression",),
            key_families=("impression-buffer",),
        )
