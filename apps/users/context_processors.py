from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from apps.tenants.selectors import public_url


def store_switcher(request: HttpRequest) -> dict:
    """`my_stores`: [(name, slug, url)] of the signed-in user's stores, queried only when a
    template uses it; `stores_url`: the store list on the public site."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def stores():
        from apps.users.selectors import user_memberships

        return [
            (m.tenant.name, m.tenant.slug, public_url(f"/stores/{m.tenant.slug}/go/"))
            for m in user_memberships(user=user)
        ]

    return {"my_stores": SimpleLazyObject(stores), "stores_url": public_url("/stores/")}
