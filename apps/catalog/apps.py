from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "apps.catalog"
    label = "catalog"

    def ready(self) -> None:
        from apps.catalog import recent, services
        from apps.core import erasure

        erasure.register("events", services.shopper_events_erase, models=("catalog.Event",))
        erasure.register("profile", services.shopper_profile_erase, models=("catalog.Shopper",))
        erasure.register(
            "recent_events", recent.shopper_recent_erase, key_families=("recent-events",)
        )
