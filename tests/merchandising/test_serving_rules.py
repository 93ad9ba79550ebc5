"""Placements and per-request rules on the recommendation endpoints, through the HTTP API, on
the small known catalog of conftest.py: exact lists for every rule kind."""

from __future__ import annotations

import orjson
import pytest
from django_tenants.utils import tenant_context

from apps.catalog.models import Event
from apps.core.cache import redis_client
from apps.merchandising.placing import rotation_key
from apps.recommendations.impressions import _buffer

pytestmark = pytest.mark.django_db

# Popularity with p6 out of stock and p7 hidden: p1 8, p2 7, p3 6, p4 5, p5 4, p8 1.


def items(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row["item_id"] for row in response.json()["items"]]


def test_without_rules_the_endpoint_answers_as_before(catalog, api):
    response = api(catalog).get("/api/v1/recommendations/users/newcomer?k=4")

    assert items(response) == ["p1", "p2", "p3", "p4"]
    assert list(response.json()) == ["recommendation_id", "model_version", "strategy", "items"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("category=shoes&category=hats", ["p1", "p2", "p5"]),
        ("price_min=40&price_max=100", ["p1", "p2", "p8"]),
        ("attr.brand=zeta", ["p2", "p4"]),
        ("attr.brand=zeta&attr.brand=acme&category=bags", ["p3", "p4", "p8"]),
        ("exclude=p1,p3&exclude=p4", ["p2", "p5", "p8"]),
        ("in_stock=false&category=shoes", ["p1", "p2", "p6"]),
    ],
)
def test_request_rules_filter_the_list(catalog, api, query, expected):
    response = api(catalog).get(f"/api/v1/recommendations/users/newcomer?{query}")

    assert items(response) == expected
    assert response.json().get("placement") is None


def test_a_placement_boosts_and_buries(catalog, api, placement):
    placement(
        catalog,
        "home",
        rules={
            "boosts": [
                {"when": {"attributes": {"on_sale": True}}, "weight": 2, "name": "sale"},
                {"when": {"attributes": {"brand": "zeta"}}, "weight": 0.5, "name": "zeta"},
            ]
        },
    )

    response = api(catalog).get("/api/v1/recommendations/users/newcomer?placement=home")

    # p1 8*2, p3 6, p4 5*2*0.5, p5 4, p2 7*0.5, p8 1
    assert response.json()["items"] == [
        {"item_id": "p1", "score": 16.0},
        {"item_id": "p3", "score": 6.0},
        {"item_id": "p4", "score": 5.0},
        {"item_id": "p5", "score": 4.0},
        {"item_id": "p2", "score": 3.5},
        {"item_id": "p8", "score": 1.0},
    ]
    assert response.json()["placement"] == "home"


def test_pins_hidden_and_filters_never_show_a_hidden_or_foreign_item(catalog, api, placement):
    placement(
        catalog,
        "home",
        rules={
            "hidden": ["p2"],
            "pins": [
                {"item_id": "p8", "position": 1},
                {"item_id": "p7", "position": 2},  # hidden in the catalog
                {"item_id": "beta-only", "position": 3},  # another store's item
                {"item_id": "p2", "position": 4},  # hidden by the placement
            ],
        },
    )

    response = api(catalog).get("/api/v1/recommendations/users/newcomer?placement=home&k=5")

    assert items(response) == ["p8", "p1", "p3", "p4", "p5"]


def test_diversity_caps_and_pins_outside_them(catalog, api, placement):
    placement(
        catalog,
        "pdp-shelf",
        rules={
            "diversity": {"max_per_category": 1},
            "pins": [{"item_id": "p2", "position": 1}],
        },
    )
    placement(catalog, "brands", rules={"diversity": {"max_per_attribute": {"brand": 1}}})
    client = api(catalog)

    capped = client.get("/api/v1/recommendations/users/newcomer?placement=pdp-shelf")
    by_brand = client.get("/api/v1/recommendations/users/newcomer?placement=brands")

    assert items(capped) == ["p2", "p1", "p3", "p5"]
    assert items(by_brand) == ["p1", "p2"]


def test_rotation_never_shows_the_same_list_twice_in_a_row(catalog, api, placement):
    placement(catalog, "home", rules={"rotation": {"window_seconds": 600}})
    client = api(catalog)
    path = "/api/v1/recommendations/users/rotating?placement=home&k=3"

    lists = [items(client.get(path)) for _ in range(3)]

    assert lists == [["p1", "p2", "p3"], ["p2", "p3", "p4"], ["p1", "p2", "p3"]]
    key = rotation_key(catalog.schema_name, "home", "u:rotating")
    assert orjson.loads(redis_client().get(key)) == ["p1", "p2", "p3"]
    assert 0 < redis_client().ttl(key) <= 600


def test_top_up_comes_from_popularity_within_the_same_filters(catalog, api, placement):
    # given a shopper who keeps coming back to p3 and p5 (their buy-again list)
    with tenant_context(catalog):
        for item in ("p3", "p3", "p5", "p5"):
            Event.objects.create(
                user_id="regular", item_id=item, type="purchase", timestamp="2026-11-01T10:00:00Z"
            )
    placement(catalog, "reorder", scenario="buy-again", rules={"filters": {"categories": ["bags"]}})
    client = api(catalog)

    plain = client.get("/api/v1/recommendations/users/regular/buy-again?placement=reorder&k=4")
    wider = client.get("/api/v1/recommendations/users/regular/buy-again?exclude=p1&k=4")

    assert items(plain) == ["p3", "p4", "p8"]
    assert items(wider) == ["p3", "p5", "p2", "p4"]


def test_every_endpoint_accepts_its_placement_and_refuses_another_scenario(catalog, api, placement):
    rules = {"filters": {"categories": ["bags"]}}
    for name, scenario in [
        ("personal", "personal"),
        ("session", "session"),
        ("similar", "similar"),
        ("together", "bought-together"),
        ("again", "buy-again"),
        ("trending", "trending"),
    ]:
        placement(catalog, name, scenario=scenario, rules=rules)
    client = api(catalog)
    paths = {
        "personal": "/api/v1/recommendations/users/newcomer",
        "session": "/api/v1/recommendations/sessions/sess-1",
        "similar": "/api/v1/recommendations/items/p3/similar",
        "together": "/api/v1/recommendations/items/p3/bought-together",
        "again": "/api/v1/recommendations/users/newcomer/buy-again",
        "trending": "/api/v1/recommendations/trending",
    }
    expected = {
        "personal": ["p3", "p4", "p8"],
        "session": ["p3", "p4", "p8"],
        "similar": ["p4", "p8"],  # same category as p3, p3 itself left out
        "together": ["p4", "p8"],
        "again": ["p3", "p4", "p8"],  # nothing to buy again: popularity top-up
        "trending": ["p3", "p4", "p8"],
    }
    for name, path in paths.items():
        assert items(client.get(f"{path}?placement={name}")) == expected[name], name
        other = "trending" if name != "trending" else "personal"
        refused = client.get(f"{path}?placement={other}")
        assert refused.status_code == 400
        assert list(refused.json()["error"]["fields"]) == ["placement"]


def test_a_change_takes_effect_at_once_on_other_processes(catalog, api, placement):
    # given a placement this process has cached
    placement(catalog, "home", rules={"exclude": ["p1"]})
    client = api(catalog)
    assert items(client.get("/api/v1/recommendations/users/newcomer?placement=home&k=2")) == [
        "p2",
        "p3",
    ]

    # when another process changes it (its commit moves the Redis version key; this
    # process's memory is left as it was)
    from apps.merchandising import placing
    from apps.merchandising.models import Placement

    with tenant_context(catalog):
        Placement.objects.filter(name="home").update(rules={"exclude": ["p2"]})
        redis_client().incr(placing.placements_key(catalog.schema_name))

    # then the next request serves the new rules
    assert items(client.get("/api/v1/recommendations/users/newcomer?placement=home&k=2")) == [
        "p1",
        "p3",
    ]


def test_a_ruled_list_is_logged_as_served(catalog, api, placement):
    placement(catalog, "home", rules={"exclude": ["p1"]})
    _buffer.pop(catalog.schema_name, None)

    response = api(catalog).get("/api/v1/recommendations/users/newcomer?placement=home&k=2")

    logged = [orjson.loads(record) for record in _buffer.pop(catalog.schema_name)]
    assert [(r[0], r[1], r[2], r[7]) for r in logged] == [
        (response.json()["recommendation_id"], "user", "newcomer", ["p2", "p3"])
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("placement=nope", "placement"),
        ("price_min=cheap", "price_min"),
        ("price_min=10&price_max=5", "price_max"),
        ("explain=maybe", "explain"),
        ("attr.brand=", "attr.brand"),
        ("k=0&placement=x", "k"),
        (f"exclude={'x' * 129}", "exclude"),
    ],
)
def test_bad_rule_parameters_are_400_naming_the_field(catalog, api, query, field):
    response = api(catalog).get(f"/api/v1/recommendations/users/newcomer?{query}")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


def test_placements_are_per_store(catalog, beta, api, placement):
    placement(catalog, "home", rules={"exclude": ["p1"]})

    response = api(beta).get("/api/v1/recommendations/users/newcomer?placement=home")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "placement": ["No placement 'home' in this store."]
    }


def test_the_rule_read_shares_the_key_gates_round_trip(catalog, api, placement, monkeypatch):
    # given a rotating placement (its read: version key, catalog token, last shown list)
    placement(catalog, "home", rules={"rotation": {"window_seconds": 600}})
    client = api(catalog)
    from apps.merchandising import placing

    separate_reads = []
    real_call = placing.rcache.redis_call

    def recording(fn, default):
        separate_reads.append(fn)
        return real_call(fn, default)

    monkeypatch.setattr(placing.rcache, "redis_call", recording)

    # when the shopper asks twice
    first = items(client.get("/api/v1/recommendations/users/batched?placement=home&k=2"))
    second = items(client.get("/api/v1/recommendations/users/batched?placement=home&k=2"))

    # then the rotation state was read in the request's batch (only the writes of the shown
    # lists went on their own), and it worked
    assert len(separate_reads) == 2
    assert [first, second] == [["p1", "p2"], ["p2", "p3"]]


def test_the_top_up_leaves_out_what_the_shopper_has_seen(catalog, api):
    with tenant_context(catalog):
        Event.objects.create(
            user_id="browser", item_id="p8", type="view", timestamp="2026-11-30T10:00:00Z"
        )

    response = api(catalog).get(
        "/api/v1/recommendations/users/browser?category=bags&category=hats&exclude=p3"
    )

    assert items(response) == ["p4", "p5"]


def test_an_item_hidden_after_its_facts_were_cached_is_never_pinned_again(
    catalog, api, placement, django_capture_on_commit_callbacks
):
    # given a placement pinning p8, served once (its facts are in this process's cache)
    placement(catalog, "home", rules={"pins": [{"item_id": "p8", "position": 1}]})
    client = api(catalog)
    path = "/api/v1/recommendations/users/newcomer?placement=home&k=3"
    assert items(client.get(path)) == ["p8", "p1", "p2"]

    # when the store deletes (hides) p8 through the catalog service
    from apps.catalog.services import item_delete

    with tenant_context(catalog), django_capture_on_commit_callbacks(execute=True):
        item_delete(item_id="p8")

    # then the pin is skipped from the next request on
    assert items(client.get(path)) == ["p1", "p2", "p3"]


def test_another_process_hiding_an_item_reaches_this_process_through_the_catalog_token(
    catalog, api, placement
):
    placement(catalog, "home", rules={"pins": [{"item_id": "p8", "position": 1}]})
    client = api(catalog)
    path = "/api/v1/recommendations/users/newcomer?placement=home&k=2"
    assert items(client.get(path)) == ["p8", "p1"]

    # another process hides p8 and bumps the store's catalog token (no signal here)
    from apps.catalog.models import Item
    from apps.recommendations import cache as rcache

    with tenant_context(catalog):
        Item.objects.filter(item_id="p8").update(is_hidden=True)
    redis_client().incr(rcache.catalog_key(catalog.schema_name))

    assert items(client.get(path)) == ["p1", "p2"]


def test_an_item_put_on_sale_is_boosted_at_once_though_its_verdict_was_kept(
    catalog, api, placement, django_capture_on_commit_callbacks
):
    # given a placement boosting items on sale, served once (every item's verdict is kept)
    placement(
        catalog,
        "home",
        rules={
            "boosts": [{"when": {"attributes": {"on_sale": True}}, "weight": 2, "name": "sale"}]
        },
    )
    client = api(catalog)
    path = "/api/v1/recommendations/users/newcomer?placement=home&k=3"
    assert items(client.get(path)) == ["p1", "p4", "p2"]  # p1 8*2, p4 5*2, p2 7

    # when the store puts p5 (4) on sale: doubled, it scores above p2
    from apps.catalog.services import items_upsert

    with tenant_context(catalog), django_capture_on_commit_callbacks(execute=True):
        items_upsert(rows=[{"item_id": "p5", "attributes": {"on_sale": True}}])

    # then the next request judges p5 afresh
    assert items(client.get(path)) == ["p1", "p4", "p5"]
