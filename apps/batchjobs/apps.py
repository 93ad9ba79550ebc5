from django.apps import AppConfig


class BatchJobsConfig(AppConfig):
    name = "apps.batchjobs"
    label = "batchjobs"

    def ready(self) -> None:
        from apps.batchjobs import erasure as erasers
        from apps.batchjobs import schema  # noqa: F401 (OpenAPI view extensions)
        from apps.core import erasure

        erasure.register(
            "batch_job_failures",
            erasers.shopper_batch_failures_erase,
            models=("batchjobs.BatchJobFailure",),
        )
        erasure.register("batch_job_results", erasers.shopper_batch_results_erase)
