import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.core.errors import ApplicationError
from apps.tenants.selectors import store_url
from apps.tenants.services import tenant_create
from apps.users.services import user_get_or_create_for_email


class Command(BaseCommand):
    help = "Create a store (schema cloned from the template) with its owner; prints its URL."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner-email", required=True)

    def handle(self, *args, slug: str, name: str, owner_email: str, **options) -> None:
        started = time.perf_counter()
        try:
            # One transaction: a store that cannot be created leaves no owner account behind.
            with transaction.atomic():
                owner, password = user_get_or_create_for_email(email=owner_email)
                tenant = tenant_create(slug=slug, name=name, owner=owner)
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} {exc.fields or ''}".strip()) from exc
        elapsed = time.perf_counter() - started
        self.stdout.write(f"Created store {tenant.slug} in {elapsed:.2f}s")
        self.stdout.write(f"URL: {store_url(tenant)}")
        self.stdout.write(f"Owner: {owner.email}")
        if password:
            self.stdout.write(f"Owner password (shown once): {password}")
