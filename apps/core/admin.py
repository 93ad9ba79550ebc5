"""What every operators' admin page of the platform shares (Django admin, public host)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.http import HttpRequest

_BIGINT = 2**63


class ModelAdmin(admin.ModelAdmin):
    """Django's ModelAdmin, except that an action posted with `_selected_action` values that
    are not primary keys (a hand-made POST: "abc", a number beyond bigint) is refused with the
    admin's warning message instead of reaching `pk__in`, where it raised a 500."""

    def response_action(self, request: HttpRequest, queryset):
        field = self.model._meta.pk
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                key = field.to_python(value)
            except ValidationError:
                key = None
            if key is None or (isinstance(key, int) and not -_BIGINT <= key < _BIGINT):
                self.message_user(
                    request, "Select items by their checkboxes only.", messages.WARNING
                )
                return None
        return super().response_action(request, queryset)
