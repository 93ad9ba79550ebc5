from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "apps.tenants"
    label = "tenants"
    verbose_name = "Stores"

    def ready(self) -> None:
        from django.db.models.signals import post_save
        from django_celery_beat.models import PeriodicTasks

        from apps.tenants.schedule_version import schedule_version_mirror

        post_save.connect(
            schedule_version_mirror, sender=PeriodicTasks, dispatch_uid="schedule_version_mirror"
        )
