"""Store pages for API keys (a simple page; the full dashboard reuses the same services)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.apikeys.models import ApiKey
from apps.apikeys.selectors import api_key_get, api_key_list, identity_secret_exists
from apps.apikeys.services import (
    EXPIRES_IN_DAYS_MAX,
    api_key_create,
    api_key_revoke,
    identity_secret_rotate,
    publishable_key_create,
)
from apps.core.errors import ApplicationError
from apps.users.permissions import store_member_required


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple
    )
    expires_in_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=EXPIRES_IN_DAYS_MAX,
        help_text="Empty: never expires.",
    )


class PublishableKeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    allowed_origins = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "https://shop.example"}),
        help_text="The storefront origins the SDK may call from, one per line.",
    )


def _publishable_create(request: HttpRequest, form: PublishableKeyForm) -> tuple[str | None, int]:
    """(the new key or None, HTTP status); errors go on the form."""
    if not form.is_valid():
        return None, 400
    try:
        _, created_key = publishable_key_create(
            name=form.cleaned_data["name"],
            allowed_origins=form.cleaned_data["allowed_origins"].split(),
            acting_user=request.user,
            request=request,
        )
    except ApplicationError as exc:
        form.add_error("allowed_origins" if "allowed_origins" in exc.fields else None, exc.message)
        return None, exc.status_code
    return created_key, 200


@store_member_required("manage_api_keys")
def api_key_list_page(request: HttpRequest) -> HttpResponse:
    # Three forms post here, told apart by `kind`; only the posted one is bound.
    kind = request.POST.get("kind", "secret")
    form = ApiKeyForm((request.POST or None) if kind == "secret" else None)
    publishable_form = PublishableKeyForm((request.POST or None) if kind == "publishable" else None)
    created_key = identity_secret = None
    status = 200
    if request.method == "POST" and kind == "publishable":
        created_key, status = _publishable_create(request, publishable_form)
        if created_key:
            publishable_form = PublishableKeyForm()
    elif request.method == "POST" and kind == "identity_secret":
        identity_secret = identity_secret_rotate(acting_user=request.user, request=request)
    elif request.method == "POST":
        if form.is_valid():
            days = form.cleaned_data["expires_in_days"]
            try:
                _, created_key = api_key_create(
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    expires_at=timezone.now() + timedelta(days=days) if days else None,
                    acting_user=request.user,
                    request=request,
                )
                form = ApiKeyForm()
            except ApplicationError as exc:
                form.add_error(None, exc.message)
                status = exc.status_code
        else:
            status = 400
    return render(
        request,
        "apikeys/list.html",
        {
            "form": form,
            "publishable_form": publishable_form,
            "api_keys": api_key_list(),
            "created_key": created_key,
            "identity_secret": identity_secret,
            "has_identity_secret": identity_secret_exists(),
        },
        status=status,
    )


@require_POST
@store_member_required("manage_api_keys")
def api_key_revoke_page(request: HttpRequest, api_key_id: int) -> HttpResponse:
    api_key = api_key_get(api_key_id=api_key_id)
    if api_key is None:
        raise Http404("No such API key.")
    try:
        api_key_revoke(api_key=api_key, acting_user=request.user, request=request)
        messages.success(request, f"Revoked {api_key.name} ({api_key.prefix}).")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("apikeys:list")
