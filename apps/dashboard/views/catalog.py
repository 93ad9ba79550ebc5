"""The catalog and shopper pages (`/catalog/`, `/shoppers/`): search and browse items and
shoppers; an item or shopper page previews what the API would recommend (never logged)."""

from __future__ import annotations

from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from apps.catalog.models import Item
from apps.catalog.selectors import item_list, shopper_events
from apps.core.errors import ApplicationError
from apps.core.ids import id_lookup
from apps.dashboard import selectors
from apps.dashboard.views.common import paginate
from apps.users.permissions import store_member_required


def _id_or_404(value: str, *, field: str) -> str:
    """An id from the URL; one that no stored id can be (NUL, too long) is simply not found."""
    try:
        return id_lookup(value, field=field)
    except ApplicationError:
        raise Http404("No such id.") from None


@store_member_required("view")
def items(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    category = request.GET.get("category", "").strip()
    found = item_list(category=category or None)
    if query:
        found = found.filter(Q(title__icontains=query) | Q(item_id__icontains=query))
    return render(
        request,
        "dashboard/items.html",
        {
            "page": paginate(request, found.order_by("title", "id")),
            "q": query,
            "category": category,
        },
    )


@store_member_required("view")
def item_detail(request: HttpRequest, item_id: str) -> HttpResponse:
    item_id = _id_or_404(item_id, field="item_id")
    item = Item.objects.listed().filter(item_id=item_id).first()
    if item is None:
        raise Http404("No such item.")
    return render(
        request,
        "dashboard/item_detail.html",
        {
            "item": item,
            "recommendations_ready": selectors.recommendations_ready(),
            **(
                selectors.item_recommendations(item_id=item.item_id)
                if selectors.recommendations_ready()
                else {}
            ),
        },
    )


@store_member_required("view")
def shoppers(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    found = selectors.shopper_search(query=query)
    return render(
        request, "dashboard/shoppers.html", {"page": paginate(request, found), "q": query}
    )


@store_member_required("view")
def shopper_detail(request: HttpRequest, user_id: str) -> HttpResponse:
    user_id = _id_or_404(user_id, field="user_id")
    history = list(shopper_events(user_id=user_id)[:100])
    profile = selectors.shopper_profile(user_id=user_id)
    if profile is None and not history:
        raise Http404("No such shopper.")
    return render(
        request,
        "dashboard/shopper_detail.html",
        {
            "user_id": user_id,
            "profile": profile,
            "history": history,
            "titles": selectors.item_titles(event.item_id for event in history),
            "recommendations_ready": selectors.recommendations_ready(),
            **(
                selectors.shopper_recommendations(user_id=user_id)
                if selectors.recommendations_ready()
                else {}
            ),
        },
    )
