import shutil
from pathlib import Path

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from apps.batchjobs import services
from apps.batchjobs.models import BatchJob
from apps.core.errors import ApplicationError
from apps.core.ids import id_clean
from apps.tenants.commands import store_for_slug


class Command(BaseCommand):
    help = (
        "Write a store's personal recommendation lists as JSON Lines (one shopper a line: "
        "user_id, items [{item_id, score}]) to --output, for listed shoppers (--user-ids-file, "
        "one id a line), a segment of the active model (--segment) or the shoppers active in "
        "the last N days (--active-within-days). Runs a batch job in this process (it shows on "
        "the store's batch jobs page); shoppers that could not be listed are printed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", required=True, help="store slug")
        selection = parser.add_mutually_exclusive_group(required=True)
        selection.add_argument("--user-ids-file", help="file with one shopper id a line")
        selection.add_argument("--segment", type=int, help="K-Means segment of the active model")
        selection.add_argument("--active-within-days", type=int, help="shoppers active in N days")
        parser.add_argument("--k", type=int, default=10, help="items per shopper (1-100)")
        parser.add_argument("--placement", default="", help="a personal placement's name")
        parser.add_argument("--output", required=True, help="path of the JSON Lines file")

    def handle(self, *args, tenant: str, output: str, **options) -> None:
        store = store_for_slug(tenant)
        if not 1 <= options["k"] <= 100:
            raise CommandError("--k must be 1 to 100.")
        if options["active_within_days"] is not None and options["active_within_days"] < 1:
            raise CommandError("--active-within-days must be at least 1.")
        user_ids = None
        if options["user_ids_file"]:
            user_ids = self._read_ids(Path(options["user_ids_file"]))
        with tenant_context(store):
            try:
                job = services.batch_job_create(
                    user_ids=user_ids,
                    segment=options["segment"],
                    active_within_days=options["active_within_days"],
                    placement=options["placement"],
                    k=options["k"],
                    actor_label="export_recommendations",
                    dispatch=False,
                )
            except ApplicationError as exc:
                raise CommandError(f"{exc.message} {exc.fields or ''}".strip()) from exc
            job = services.batch_job_run_inline(job_id=job.pk)
            if job.status != BatchJob.Status.SUCCEEDED:
                raise CommandError(f"Batch job {job.pk} {job.status}: {job.error}")
            with default_storage.open(job.result_name, "rb") as source, open(output, "wb") as out:
                shutil.copyfileobj(source, out, length=1 << 20)
            for failure in job.failures.order_by("chunk", "id")[:100]:
                self.stderr.write(f"not listed: {failure.user_id} ({failure.reason})")
        self.stdout.write(
            f"Wrote {job.total - job.failures_count} shoppers to {output} "
            f"({job.failures_count} not listed; job {job.pk})."
        )

    def _read_ids(self, path: Path) -> list[str]:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read --user-ids-file: {exc}") from exc
        user_ids = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                user_ids.append(id_clean(line, field="user_ids"))
            except ApplicationError as exc:
                raise CommandError(
                    f"--user-ids-file line {number}: {exc.fields['user_ids'][0]}"
                ) from exc
        if not user_ids:
            raise CommandError("--user-ids-file holds no shopper id.")
        return list(dict.fromkeys(user_ids))
