"""The dashboard's placements pages: create / edit / delete through the forms (audited as the
member), roles, and the preview and shopper page showing titles and reasons exactly as the
API serves them, without logging an impression."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.merchandising.models import Placement
from apps.recommendations.impressions import _buffer
from apps.tenants.selectors import store_domain

pytestmark = pytest.mark.django_db


def placements_of(tenant) -> dict[str, tuple[str, dict]]:
    with tenant_context(tenant):
        return {p.name: (p.scenario, p.rules) for p in Placement.objects.all()}


def test_an_owner_creates_edits_and_deletes_a_placement(catalog, member_client):
    client, user = member_client(catalog, "owner")

    created = client.post(
        "/placements/new/",
        {"name": "home", "scenario": "personal", "rules": '{"exclude": ["p1"]}'},
    )
    page = client.get("/placements/")
    edited = client.post(
        "/placements/edit/home/", {"scenario": "trending", "rules": '{"hidden": ["p2"]}'}
    )
    after_edit = placements_of(catalog)
    deleted = client.post("/placements/delete/home/")

    assert created.status_code == 302
    assert b"home" in page.content
    assert b"Placements</a>" in page.content
    assert edited.status_code == 302
    assert after_edit == {"home": ("trending", {"hidden": ["p2"]})}
    assert deleted.status_code == 302
    assert placements_of(catalog) == {}
    with tenant_context(catalog):
        rows = list(
            AuditEvent.objects.filter(target_type="placement")
            .order_by("id")
            .values_list("action", "actor_user_id")
        )
    assert rows == [
        ("placement.created", user.pk),
        ("placement.updated", user.pk),
        ("placement.deleted", user.pk),
    ]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("{not json", b"Not valid JSON."),
        ('{"pins": [{"item_id": "p1", "position": 0}]}', b"rules.pins[0].position"),
        # Past orjson's bound, then past the parser's (the standard library's parser raised
        # RecursionError on the first: a 500).
        ("[" * 5000 + "]" * 5000, b"Nested deeper than 64 levels."),
        ('{"exclude": ' + "[" * 999 + "]" * 999 + "}", b"Nested deeper than 64 levels."),
    ],
)
def test_invalid_rules_come_back_with_the_field_and_nothing_is_written(
    catalog, member_client, rules, message
):
    client, _ = member_client(catalog, "owner")

    response = client.post(
        "/placements/new/", {"name": "home", "scenario": "personal", "rules": rules}
    )

    assert response.status_code == 400
    assert message in response.content
    assert placements_of(catalog) == {}


def test_an_analyst_sees_placements_but_cannot_change_them(catalog, member_client, placement):
    placement(catalog, "home", rules={"exclude": ["p1"]})
    client, _ = member_client(catalog, "analyst")

    page = client.get("/placements/")
    create = client.post("/placements/new/", {"name": "x", "scenario": "personal"})
    edit = client.post("/placements/edit/home/", {"scenario": "trending", "rules": "{}"})
    delete = client.post("/placements/delete/home/")

    assert page.status_code == 200
    assert [create.status_code, edit.status_code, delete.status_code] == [403, 403, 403]
    assert placements_of(catalog) == {"home": ("personal", {"exclude": ["p1"]})}


def test_the_preview_is_the_api_list_with_titles_and_reasons_and_logs_nothing(
    catalog, member_client, api, placement
):
    placement(
        catalog,
        "home",
        rules={
            "pins": [{"item_id": "p8", "position": 1}],
            "boosts": [{"when": {"items": ["p3"]}, "weight": 2, "name": "bags push"}],
        },
    )
    client, _ = member_client(catalog, "analyst")
    _buffer.pop(catalog.schema_name, None)

    page = client.get("/placements/preview/?placement=home&subject=newcomer")

    assert page.status_code == 200
    assert catalog.schema_name not in _buffer
    rows = [
        (row["item_id"], row["title"], row["reason_text"])
        for row in page.context["preview"]["items"]
    ]
    assert rows == [
        ("p8", "Title p8", "pinned at position 1"),
        ("p3", "Title p3", "boosted by bags push (x2); popular"),
        ("p1", "Title p1", "popular"),
        ("p2", "Title p2", "popular"),
        ("p4", "Title p4", "popular"),
        ("p5", "Title p5", "popular"),
    ]
    served = (
        api(catalog)
        .get("/api/v1/recommendations/users/newcomer?placement=home&explain=true")
        .json()["items"]
    )
    preview = page.context["preview"]["body"]["items"]
    assert [(r["item_id"], r["score"], r["reason"]) for r in preview] == [
        (r["item_id"], r["score"], r["reason"]) for r in served
    ]
    assert b"Title p8" in page.content
    assert b"pinned at position 1" in page.content


def test_a_preview_of_an_unknown_item_says_so(catalog, member_client, placement):
    placement(catalog, "pdp", scenario="similar")
    client, _ = member_client(catalog, "owner")

    page = client.get("/placements/preview/?placement=pdp&subject=nope")

    assert page.status_code == 200
    assert page.context["preview_error"] == "No item 'nope' in this store's catalog."


def test_the_shopper_page_shows_titles_and_reasons(catalog, member_client):
    with tenant_context(catalog):
        from apps.catalog.models import Event

        Event.objects.create(
            user_id="visitor", item_id="p1", type="view", timestamp="2026-11-30T10:00:00Z"
        )
    client, _ = member_client(catalog, "analyst")

    page = client.get("/shoppers/visitor/")

    assert page.status_code == 200
    assert [(r["item_id"], r["title"], r["reason"]) for r in page.context["recommendations"]][
        :2
    ] == [("p2", "Title p2", "popular"), ("p3", "Title p3", "popular")]
    assert b"Title p2</a>" in page.content


def test_a_member_of_another_store_gets_no_placement_page(catalog, beta, member_client, placement):
    placement(catalog, "home")
    client, _ = member_client(beta, "owner")
    alpha_host = store_domain(catalog.slug)

    page = client.get("/placements/edit/home/", HTTP_HOST=alpha_host)
    delete = client.post("/placements/delete/home/", HTTP_HOST=alpha_host)
    own = client.get("/placements/")

    assert [page.status_code, delete.status_code] == [403, 403]
    assert own.context["placements"] == []
    assert placements_of(catalog) == {"home": ("personal", {})}
