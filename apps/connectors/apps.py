from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "apps.connectors"
    label = "connectors"

    def ready(self) -> None:
        from apps.connectors import services
        from apps.core import erasure

        erasure.register(
            "platform_data_requests",
            services.shopper_data_requests_erase,
            models=("connectors.ShopperDataRequest",),
        )
