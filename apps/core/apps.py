from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        from django.urls import register_converter

        from apps.core.ids import IdConverter

        # Before any URLconf is imported: store ids may contain "/" (apps.core.ids).
        register_converter(IdConverter, "id")
