from django.apps import AppConfig


class ApiKeysConfig(AppConfig):
    name = "apps.apikeys"
    label = "apikeys"

    def ready(self) -> None:
        # Registers the OpenAPI security scheme of API keys with drf-spectacular.
        from apps.apikeys import schema  # noqa: F401
