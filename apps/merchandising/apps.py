from django.apps import AppConfig


class MerchandisingConfig(AppConfig):
    name = "apps.merchandising"
    label = "merchandising"

    def ready(self) -> None:
        from apps.catalog.signals import items_changed
        from apps.core import erasure
        from apps.merchandising import erasure as erasers
        from apps.merchandising import (
            facts,
            schema,  # noqa: F401 (OpenAPI view extensions)
        )

        items_changed.connect(facts.on_items_changed, dispatch_uid="merchandising")
        erasure.register(
            "placement_rotation",
            erasers.shopper_rotation_erase,
            key_families=("placement-rotation",),
        )
        erasure.register_export("placements", erasers.shopper_rotation_export)
