"""The rules engine alone (apps.merchandising.rules): parsing errors name the key, and each step
of the one order of operations on a small known list."""

from __future__ import annotations

import pytest

from apps.merchandising.ordering import apply
from apps.merchandising.rules import ItemFacts
from apps.merchandising.rules_json import RuleError, parse_rules

CATALOG = {
    "p1": ItemFacts(("shoes",), 50.0, True, False, {"brand": "acme", "on_sale": True}),
    "p2": ItemFacts(("shoes",), 80.0, True, False, {"brand": "zeta"}),
    "p3": ItemFacts(("bags",), 30.0, True, False, {"brand": "acme"}),
    "p4": ItemFacts(("bags",), 120.0, True, False, {"brand": "zeta", "on_sale": "true"}),
    "p5": ItemFacts(("hats",), 20.0, True, False, {"brand": "acme", "size": ["s", "m"]}),
    "p6": ItemFacts(("shoes",), 60.0, False, False, {"brand": "acme"}),
    "p7": ItemFacts(("hats",), 15.0, True, True, {"brand": "zeta"}),
    "p8": ItemFacts(("bags",), None, True, False, {}),
}
CANDIDATES = [("p1", 8.0), ("p2", 7.0), ("p3", 6.0), ("p4", 5.0), ("p5", 4.0), ("p6", 3.0)]
POPULAR = [("p8", 100.0), ("p7", 90.0), ("p5", 80.0), ("p1", 70.0), ("p2", 60.0)]


def lookup(ids):
    return {item: CATALOG[item] for item in ids if item in CATALOG}


def ruled(rules: dict, k: int = 10, candidates=CANDIDATES, **kwargs) -> list[str]:
    placed = apply(parse_rules(rules), candidates, k=k, facts=lookup, fallback=POPULAR, **kwargs)
    return [p.item_id for p in placed]


def test_no_rules_keep_the_order_and_drop_out_of_stock_and_unknown_items():
    assert ruled({}, candidates=[*CANDIDATES, ("other-store", 1.0)], k=5) == [
        "p1",
        "p2",
        "p3",
        "p4",
        "p5",
    ]


def test_filters_combine_categories_price_and_attributes():
    assert ruled({"filters": {"categories": ["shoes", "bags"]}}, k=4) == ["p1", "p2", "p3", "p4"]
    assert ruled({"filters": {"price_min": 30, "price_max": 80}}, k=3) == ["p1", "p2", "p3"]
    assert ruled({"filters": {"attributes": {"brand": ["zeta"]}}}, k=2) == ["p2", "p4"]
    assert ruled({"filters": {"attributes": {"size": "m"}}}, k=5) == ["p5"]
    assert ruled({"filters": {"attributes": {"on_sale": True}}}, k=2) == ["p1", "p4"]


def test_exclude_and_hidden_remove_items_and_top_up_skips_them():
    assert ruled({"exclude": ["p1"], "hidden": ["p2", "p8"]}, k=5) == [
        "p3",
        "p4",
        "p5",
    ]


def test_boost_and_bury_multiply_then_re_sort():
    rules = {
        "boosts": [
            {"when": {"attributes": {"on_sale": True}}, "weight": 2, "name": "sale"},
            {"when": {"attributes": {"brand": "zeta"}}, "weight": 0.5},
        ]
    }
    placed = apply(parse_rules(rules), CANDIDATES, k=5, facts=lookup)
    # p1 8*2=16, p3 6, p4 5*2*0.5=5, p5 4, p2 7*0.5=3.5
    assert [(p.item_id, p.score) for p in placed] == [
        ("p1", 16.0),
        ("p3", 6.0),
        ("p4", 5.0),
        ("p5", 4.0),
        ("p2", 3.5),
    ]
    assert placed[0].boosted_by == ("sale",)
    assert placed[2].boosted_by == ("sale", "boost 2")


def test_a_boost_moves_a_negative_score_up_too():
    placed = apply(
        parse_rules({"boosts": [{"when": {"items": ["p2"]}, "weight": 2}]}),
        [("p1", -1.0), ("p2", -1.5)],
        k=2,
        facts=lookup,
    )
    assert [(p.item_id, p.score) for p in placed] == [("p2", -0.75), ("p1", -1.0)]


def test_diversity_caps_per_category_and_per_attribute():
    assert ruled({"diversity": {"max_per_category": 1}}, k=5) == ["p1", "p3", "p5"]
    assert ruled({"diversity": {"max_per_attribute": {"brand": 1}}}, k=5) == ["p1", "p2", "p8"]


def test_pins_take_their_positions_obey_hard_filters_and_not_the_caps():
    rules = {
        "diversity": {"max_per_category": 1},
        "pins": [
            {"item_id": "p2", "position": 1},
            {"item_id": "p7", "position": 2},  # hidden: skipped
            {"item_id": "p6", "position": 3},  # out of stock: skipped
            {"item_id": "p4", "position": 9},  # beyond the list: appended
        ],
    }
    assert ruled(rules, k=10) == ["p2", "p1", "p3", "p5", "p4"]


def test_rotation_rotates_unpinned_items_when_the_list_was_just_shown():
    rules = {"pins": [{"item_id": "p5", "position": 2}], "rotation": {"window_seconds": 60}}
    first = ruled(rules, k=3)
    assert first == ["p1", "p5", "p2"]
    assert ruled(rules, k=3, last_shown=first) == ["p2", "p5", "p3"]
    assert ruled(rules, k=3, last_shown=["p2", "p5", "p3"]) == first


def test_top_up_from_the_fallback_within_the_same_filters():
    assert ruled({"filters": {"categories": ["bags", "hats"]}}, k=5, candidates=[("p3", 1.0)]) == [
        "p3",
        "p8",
        "p5",
    ]
    placed = apply(parse_rules({}), [("p3", 1.0)], k=3, facts=lookup, fallback=POPULAR)
    assert [(p.item_id, p.score, p.origin) for p in placed] == [
        ("p3", 1.0, "candidate"),
        ("p8", 0.999, "fallback"),
        ("p5", 0.998, "fallback"),
    ]


def test_out_of_stock_items_are_allowed_when_the_request_says_so():
    assert ruled({"filters": {"categories": ["shoes"]}}, in_stock=False) == ["p1", "p2", "p6"]


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({"nope": 1}, "nope"),
        ({"filters": {"price_min": "cheap"}}, "filters.price_min"),
        ({"filters": {"price_min": 10, "price_max": 5}}, "filters.price_max"),
        ({"filters": {"categories": "shoes"}}, "filters.categories"),
        ({"boosts": [{"when": {"items": ["p1"]}, "weight": 0}]}, "boosts[0].weight"),
        ({"boosts": [{"weight": 2}]}, "boosts[0].when"),
        ({"boosts": [{"when": {}, "weight": 2}]}, "boosts[0].when"),
        ({"pins": [{"item_id": "p1", "position": 0}]}, "pins[0].position"),
        (
            {"pins": [{"item_id": "p1", "position": 1}, {"item_id": "p2", "position": 1}]},
            "pins[1].position",
        ),
        ({"diversity": {"max_per_category": "two"}}, "diversity.max_per_category"),
        ({"diversity": {"max_per_attribute": {"brand": 0}}}, "diversity.max_per_attribute.brand"),
        ({"rotation": {"window_seconds": -1}}, "rotation.window_seconds"),
        ({"filters": {"attributes": {"brand": {"nested": 1}}}}, "filters.attributes.brand"),
    ],
)
def test_invalid_rules_name_the_key(rules, field):
    with pytest.raises(RuleError) as raised:
        parse_rules(rules)
    assert raised.value.field == field


def test_the_canonical_form_round_trips():
    rules = {
        "filters": {"categories": ["shoes"], "attributes": {"brand": "acme"}},
        "boosts": [{"when": {"attributes": {"on_sale": True}}, "weight": 1.5, "name": "sale"}],
        "pins": [{"item_id": "p9", "position": 2}],
        "diversity": {"max_per_category": 2},
        "rotation": {"window_seconds": 600},
    }
    canonical = parse_rules(rules).as_dict()
    assert canonical == {
        "filters": {"categories": ["shoes"], "attributes": {"brand": ["acme"]}},
        "boosts": [{"when": {"attributes": {"on_sale": ["true"]}}, "weight": 1.5, "name": "sale"}],
        "pins": [{"item_id": "p9", "position": 2}],
        "diversity": {"max_per_category": 2},
        "rotation": {"window_seconds": 600},
    }
    assert parse_rules(canonical) == parse_rules(rules)
