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
from apps.apikeys.selectors import api_key_get, api_key_list
from apps.apikeys.services import api_key_create, api_key_revoke
from apps.core.errors import ApplicationError
from apps.users.permissions import store_member_required


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple
    )
    expires_in_days = forms.IntegerField(
        required=False, min_value=1, max_value=3650, help_text="Empty: never expires."
    )


@store_member_required("manage_api_keys")
def api_key_list_page(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    created_key = None
    status = 200
    if request.method == "POST":
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
        {"form": form, "api_keys": api_key_list(), "created_key": created_key},
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
