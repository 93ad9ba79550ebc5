"""Writes on users, one module per subject (as Zulip's `zerver/actions/`):

- `accounts`: finding or creating a user by email, verifying their address;
- `invitations`: invitation links, inviting, accepting, declining, revoking;
- `memberships`: removing members, changing roles, transferring ownership;
- `common`: the store audit, permission check and role helpers the others share.

The public services are re-exported here, so callers write `from apps.users import services`
or `from apps.users.services import membership_invite`."""

from apps.users.services.accounts import user_email_verify, user_get_or_create_for_email
from apps.users.services.invitations import (
    INVITATION_SALT,
    invitation_accept,
    invitation_decline,
    invitation_from_token,
    invitation_revoke,
    invitation_token,
    invitation_url,
    membership_invite,
)
from apps.users.services.memberships import (
    membership_change_role,
    membership_remove,
    membership_transfer_ownership,
)

__all__ = [
    "INVITATION_SALT",
    "invitation_accept",
    "invitation_decline",
    "invitation_from_token",
    "invitation_revoke",
    "invitation_token",
    "invitation_url",
    "membership_change_role",
    "membership_invite",
    "membership_remove",
    "membership_transfer_ownership",
    "user_email_verify",
    "user_get_or_create_for_email",
]
