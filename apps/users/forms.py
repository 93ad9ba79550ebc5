"""Signup asks for the new store's name and address (unless the person was invited)."""

from __future__ import annotations

from allauth.account.forms import SignupForm as AllauthSignupForm
from allauth.socialaccount.forms import SignupForm as AllauthSocialSignupForm
from django import forms
from django.conf import settings
from django.db import transaction

from apps.core.errors import ApplicationError
from apps.tenants.services import slug_validate, store_name_clean, tenant_create
from apps.users.models import Membership
from apps.users.selectors import pending_invitation_exists


class StoreFieldsMixin(forms.Form):
    template_name_p = "users/forms/p.html"
    store_name = forms.CharField(label="Store name", max_length=120, required=False)
    store_slug = forms.CharField(
        label="Store address",
        max_length=40,
        required=False,
        help_text=(
            f"Your store will live at your-address.{settings.BASE_DOMAIN}: lowercase letters, "
            "digits and hyphens."
        ),
    )

    def clean(self):
        cleaned = super().clean()
        email = (cleaned.get("email") or "").strip().lower()
        name = (cleaned.get("store_name") or "").strip()
        slug = (cleaned.get("store_slug") or "").strip().lower()
        if not name and not slug and email and pending_invitation_exists(email=email):
            return cleaned  # an invited person joins a store instead of creating one
        if not name:
            self.add_error("store_name", "Name your store.")
        else:
            try:
                name = store_name_clean(name)
            except ApplicationError as exc:
                self.add_error("store_name", exc.message)
        if not slug:
            self.add_error("store_slug", "Choose your store's address.")
            return cleaned
        try:
            slug_validate(slug)
        except ApplicationError as exc:
            self.add_error("store_slug", exc.message)
            return cleaned
        cleaned["store_slug"] = slug
        cleaned["store_name"] = name
        return cleaned

    def save(self, request):
        # The user and their store commit together: a store that fails leaves no account.
        with transaction.atomic():
            user = super().save(request)
            slug = self.cleaned_data.get("store_slug")
            if slug:
                tenant_create(
                    slug=slug, name=self.cleaned_data["store_name"], owner=user, request=request
                )
        return user


class SignupForm(StoreFieldsMixin, AllauthSignupForm):
    field_order = ["email", "password1", "password2", "store_name", "store_slug"]


class SocialSignupForm(StoreFieldsMixin, AllauthSocialSignupForm):
    field_order = ["email", "store_name", "store_slug"]


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(
        choices=[(r, label) for r, label in Membership.Role.choices if r != "owner"]
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)
