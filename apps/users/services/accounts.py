"""User accounts: finding or creating a user by email, and marking their address verified."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from apps.core.errors import ApplicationError
from apps.users.models import User


@transaction.atomic
def user_get_or_create_for_email(*, email: str) -> tuple[User, str | None]:
    """The user with this email, created with a random password if new.

    Returns (user, password) where password is the generated one for a new user (to show
    once) and None for an existing user.
    """
    email = User.objects.normalize_email(email.strip()).lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ApplicationError(
            "Not a valid email address.", fields={"email": ["invalid"]}
        ) from None
    user = User.objects.filter(email=email).first()
    if user is not None:
        return user, None
    password = secrets.token_urlsafe(12)
    return User.objects.create_user(email=email, password=password), password


@transaction.atomic
def user_email_verify(*, user: User) -> None:
    """Mark the user's own address verified and primary in allauth (accounts made by staff
    commands, whose address nobody has to confirm by email). Idempotent; any other address
    of the user stops being primary."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.filter(user=user, primary=True).exclude(email=user.email).update(
        primary=False
    )
    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )
