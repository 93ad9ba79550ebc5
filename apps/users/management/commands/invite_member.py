from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ApplicationError
from apps.tenants.commands import store_for_slug
from apps.users.services import invitation_url, membership_invite


class Command(BaseCommand):
    help = "Invite someone to a store with a role; emails the link and prints it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tenant", required=True, help="store slug")
        parser.add_argument("--email", required=True)
        parser.add_argument("--role", required=True, help="admin, developer or analyst")

    def handle(self, *args, tenant: str, email: str, role: str, **options) -> None:
        store = store_for_slug(tenant)
        try:
            invitation = membership_invite(
                tenant=store, email=email, role=role, actor_label="command:invite_member"
            )
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} {exc.fields or ''}".strip()) from exc
        self.stdout.write(f"Invited {invitation.email} to {store.slug} as {invitation.role}.")
        self.stdout.write(
            f"Link (expires {invitation.expires_at:%Y-%m-%d}): {invitation_url(invitation)}"
        )
