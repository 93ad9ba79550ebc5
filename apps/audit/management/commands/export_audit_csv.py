from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.audit.services import audit_export_csv
from apps.tenants.commands import store_for_slug


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        # As its UTC instant: PostgreSQL takes offsets up to ±15:59 only.
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise CommandError(f"Not an ISO date/time: {value!r}") from exc


class Command(BaseCommand):
    help = "Export a store's audit events as CSV (--tenant public: the operators' trail)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", required=True, help="store slug, or `public`")
        parser.add_argument("--output", help="file to write; default standard output")
        parser.add_argument("--since", help="ISO date/time, inclusive")
        parser.add_argument("--until", help="ISO date/time, exclusive")

    def handle(self, *args, tenant: str, **options) -> None:
        store = store_for_slug(tenant, allow_public=True)
        since, until = _moment(options["since"]), _moment(options["until"])
        output = options["output"]
        with tenant_context(store):
            if output:
                try:
                    out = open(output, "w", newline="", encoding="utf-8")  # noqa: SIM115
                except OSError as exc:
                    raise CommandError(f"Cannot write {output}: {exc.strerror}.") from exc
                with out:
                    count = audit_export_csv(
                        out=out, since=since, until=until, actor_label="command:export_audit_csv"
                    )
                self.stderr.write(f"Exported {count} events of {tenant} to {output}.")
            else:
                audit_export_csv(
                    out=self.stdout,
                    since=since,
                    until=until,
                    actor_label="command:export_audit_csv",
                )
