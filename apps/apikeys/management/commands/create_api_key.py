from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.apikeys.services import EXPIRES_IN_DAYS_MAX, api_key_create
from apps.core.errors import ApplicationError
from apps.tenants.commands import store_for_slug


class Command(BaseCommand):
    help = "Create an API key for a store; prints the key once (only its hash is stored)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", required=True, help="store slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--scopes", required=True, help="comma-separated: ingest,recommend")
        parser.add_argument("--expires-in-days", type=int, default=None)

    def handle(self, *args, tenant: str, name: str, scopes: str, **options) -> None:
        store = store_for_slug(tenant)
        days = options["expires_in_days"]
        if days is not None and not 1 <= days <= EXPIRES_IN_DAYS_MAX:
            raise CommandError(f"--expires-in-days must be from 1 to {EXPIRES_IN_DAYS_MAX}.")
        expires_at = timezone.now() + timedelta(days=days) if days is not None else None
        try:
            with tenant_context(store):
                api_key, plaintext = api_key_create(
                    name=name,
                    scopes=scopes.split(","),
                    expires_at=expires_at,
                    actor_label="command:create_api_key",
                )
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} {exc.fields or ''}".strip()) from exc
        self.stdout.write(f"Created API key {api_key.name!r} ({api_key.prefix}) for {store.slug}")
        self.stdout.write(f"Scopes: {','.join(api_key.scopes)}")
        if api_key.expires_at:
            self.stdout.write(f"Expires: {api_key.expires_at.isoformat()}")
        self.stdout.write(f"Key (shown once): {plaintext}")
