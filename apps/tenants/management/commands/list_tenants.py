from django.core.management.base import BaseCommand

from apps.tenants.selectors import store_list, store_url


class Command(BaseCommand):
    help = "List stores with their status, schema and URL."

    def handle(self, *args, **options) -> None:
        rows = [("SLUG", "STATUS", "SCHEMA", "CREATED", "URL")]
        for tenant in store_list():
            rows.append(
                (
                    tenant.slug,
                    tenant.status,
                    tenant.schema_name,
                    tenant.created_at.strftime("%Y-%m-%d %H:%M"),
                    store_url(tenant),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write(
                "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            )
        self.stdout.write(f"{len(rows) - 1} store(s)")
