"""The placements API (`/api/v1/placements/`, scope `manage`): CRUD, validation errors naming
the field, the audit trail, and isolation between stores."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.merchandising.models import Placement

pytestmark = pytest.mark.django_db

RULES = {
    "filters": {"categories": ["shoes", "bags"], "price_max": 200},
    "boosts": [{"when": {"attributes": {"on_sale": True}}, "weight": 1.5, "name": "sale"}],
    "pins": [{"item_id": "p1", "position": 1}],
    "diversity": {"max_per_category": 2},
    "rotation": {"window_seconds": 3600},
}
CANONICAL = {
    "filters": {"categories": ["bags", "shoes"], "price_max": 200.0},
    "boosts": [{"when": {"attributes": {"on_sale": ["true"]}}, "weight": 1.5, "name": "sale"}],
    "pins": [{"item_id": "p1", "position": 1}],
    "diversity": {"max_per_category": 2},
    "rotation": {"window_seconds": 3600},
}


def audit_rows(tenant) -> list[tuple[str, str, dict]]:
    with tenant_context(tenant):
        return list(
            AuditEvent.objects.filter(target_type="placement")
            .order_by("id")
            .values_list("action", "target_id", "details")
        )


def names(tenant) -> list[str]:
    with tenant_context(tenant):
        return list(Placement.objects.values_list("name", flat=True))


def test_create_read_replace_delete_each_audited(alpha, api):
    client = api(alpha, scopes=("manage",))

    created = client.post(
        "/api/v1/placements/",
        {"name": "home", "scenario": "personal", "rules": RULES},
        content_type="application/json",
    )
    listed = client.get("/api/v1/placements/")
    replaced = client.put(
        "/api/v1/placements/home",
        {"scenario": "trending", "rules": {"exclude": ["p2"]}},
        content_type="application/json",
    )
    read = client.get("/api/v1/placements/home")
    deleted = client.delete("/api/v1/placements/home")
    gone = client.get("/api/v1/placements/home")

    assert created.status_code == 201
    assert {key: created.json()[key] for key in ("name", "scenario", "rules")} == {
        "name": "home",
        "scenario": "personal",
        "rules": CANONICAL,
    }
    assert [row["name"] for row in listed.json()["results"]] == ["home"]
    assert replaced.status_code == 200
    assert read.json()["scenario"] == "trending"
    assert read.json()["rules"] == {"exclude": ["p2"]}
    assert deleted.status_code == 204
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "not_found"
    assert audit_rows(alpha) == [
        ("placement.created", "home", {"scenario": "personal", "rules": CANONICAL}),
        (
            "placement.updated",
            "home",
            {
                "before": {"scenario": "personal", "rules": CANONICAL},
                "after": {"scenario": "trending", "rules": {"exclude": ["p2"]}},
            },
        ),
        ("placement.deleted", "home", {"scenario": "trending", "rules": {"exclude": ["p2"]}}),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Home Page", "scenario": "personal"}, "name"),
        ({"name": "home", "scenario": "homepage"}, "scenario"),
        ({"name": "home"}, "scenario"),
        ({"name": "home", "scenario": "personal", "rules": []}, "rules"),
        (
            {"name": "home", "scenario": "personal", "rules": {"boosts": [{"weight": 2}]}},
            "rules.boosts[0].when",
        ),
        (
            {"name": "home", "scenario": "personal", "rules": {"pins": [{"item_id": "x"}]}},
            "rules.pins[0].position",
        ),
        (
            {"name": "home", "scenario": "personal", "rules": {"filters": {"price": 3}}},
            "rules.filters.price",
        ),
    ],
)
def test_invalid_input_is_400_naming_the_field_and_writes_nothing(alpha, api, body, field):
    response = api(alpha, scopes=("manage",)).post(
        "/api/v1/placements/", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    assert names(alpha) == []
    assert audit_rows(alpha) == []


def test_a_name_is_unique_per_store_but_free_in_another(alpha, beta, api):
    body = {"name": "home", "scenario": "personal"}
    first = api(alpha, scopes=("manage",)).post(
        "/api/v1/placements/", body, content_type="application/json"
    )
    again = api(alpha, scopes=("manage",)).post(
        "/api/v1/placements/", body, content_type="application/json"
    )
    other_store = api(beta, scopes=("manage",)).post(
        "/api/v1/placements/", {**body, "scenario": "trending"}, content_type="application/json"
    )

    assert first.status_code == 201
    assert again.status_code == 400
    assert again.json()["error"]["fields"] == {"name": ["A placement of this name already exists."]}
    assert other_store.status_code == 201
    assert names(alpha) == ["home"]
    assert names(beta) == ["home"]


def test_a_store_never_sees_or_changes_another_stores_placements(alpha, beta, api):
    api(alpha, scopes=("manage",)).post(
        "/api/v1/placements/",
        {"name": "home", "scenario": "personal"},
        content_type="application/json",
    )
    beta_client = api(beta, scopes=("manage",))

    listed = beta_client.get("/api/v1/placements/")
    read = beta_client.get("/api/v1/placements/home")
    changed = beta_client.put(
        "/api/v1/placements/home", {"scenario": "trending"}, content_type="application/json"
    )
    deleted = beta_client.delete("/api/v1/placements/home")

    assert listed.json() == {"results": []}
    assert [read.status_code, changed.status_code, deleted.status_code] == [404, 404, 404]
    with tenant_context(alpha):
        assert list(Placement.objects.values_list("scenario", flat=True)) == ["personal"]


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_manage_scope_is_required(alpha, api, store_client, method):
    recommend_only = api(alpha, scopes=("recommend",))

    refused = getattr(recommend_only, method)(
        "/api/v1/placements/",
        {"name": "home", "scenario": "personal"},
        content_type="application/json",
    )
    anonymous = getattr(store_client(alpha), method)("/api/v1/placements/")

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "missing_scope"
    assert anonymous.status_code == 401
    assert names(alpha) == []


def test_a_replace_may_repeat_the_name_but_not_contradict_it(alpha, api):
    client = api(alpha, scopes=("manage",))
    client.post(
        "/api/v1/placements/",
        {"name": "home", "scenario": "personal"},
        content_type="application/json",
    )

    repeated = client.put(
        "/api/v1/placements/home",
        {"name": "home", "scenario": "trending"},
        content_type="application/json",
    )
    contradicted = client.put(
        "/api/v1/placements/home",
        {"name": "other", "scenario": "similar"},
        content_type="application/json",
    )

    assert repeated.status_code == 200
    assert contradicted.status_code == 400
    assert contradicted.json()["error"]["fields"] == {"name": ["Must match the name in the URL."]}
    assert client.get("/api/v1/placements/home").json()["scenario"] == "trending"
    assert names(alpha) == ["home"]
