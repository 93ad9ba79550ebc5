from django.conf import settings
from django.http import HttpRequest


def platform(request: HttpRequest) -> dict:
    return {
        "base_domain": settings.BASE_DOMAIN,
        "current_tenant": getattr(request, "tenant", None),
    }
