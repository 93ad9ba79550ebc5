from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "apps.catalog"
    label = "catalog"

    def ready(self) -> None:
        from apps.catalog import recent, schema, services, sessions  # noqa: F401 (schema: OpenAPI)
        from apps.core import erasure

        erasure.register("events", services.shopper_events_erase, models=("catalog.Event",))
        erasure.register("profile", services.shopper_profile_erase, models=("catalog.Shopper",))
        erasure.register(
            "recent_events",
            recent.shopper_recent_erase,
            key_families=("recent-events", "recent-events-latest"),
        )
        erasure.register(
            "sessions",
            sessions.shopper_sessions_erase,
            models=("catalog.SessionLink", "catalog.Event"),
            key_families=("session-recent-events", "session-links"),
        )
        erasure.register_export("sessions", sessions.shopper_sessions_export)
