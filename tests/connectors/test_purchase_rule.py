"""The one purchase rule, for every source (API / SDK events and the connectors): a purchase is
identified by (order_id, item), so the same order reported twice counts once, and a `refund`
event for (order_id, item) removes the purchase from attributed revenue and from training."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog.models import Event
from apps.recommendations.selectors import analytics_summary
from apps.recommendations.training import interactions_read
from tests.connectors.payloads import woo_order
from tests.factories import ImpressionFactory, api_key_for, event_payload

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/bulk"


@pytest.fixture
def api(store_client):
    def make(tenant):
        _, key = api_key_for(tenant, scopes=("ingest",))
        return store_client(tenant, HTTP_AUTHORIZATION=f"Bearer {key}")

    return make


def _post(client, rows):
    return client.post(URL, data=orjson.dumps(rows), content_type="application/json")


def _purchase(event_id, **overrides):
    fields = {
        "event_id": event_id,
        "user_id": "25",
        "item_id": "794",
        "type": "purchase",
        "order_id": "727",
        "value": 43.98,
    }
    return event_payload(**{**fields, **overrides})


def test_the_same_order_line_sent_twice_through_the_api_counts_once(alpha, api):
    client = api(alpha)

    # Two event ids, one order line: in one batch, then again in a later batch
    first = _post(client, [_purchase("p-1"), _purchase("p-2")])
    later = _post(client, [_purchase("p-3"), _purchase("p-4", item_id="93", value=9.0)])

    assert first.json() == {"accepted": 1, "duplicates": 1, "errors": []}
    assert later.json() == {"accepted": 1, "duplicates": 1, "errors": []}
    with tenant_context(alpha):
        assert sorted(
            Event.objects.filter(type="purchase").values_list("event_id", "item_id", "order_id")
        ) == [("p-1", "794", "727"), ("p-4", "93", "727")]


def test_purchases_without_an_order_id_are_not_merged(alpha, api):
    response = _post(api(alpha), [_purchase("p-1", order_id=None), _purchase("p-2", order_id=None)])

    assert response.json()["accepted"] == 2


def test_a_refund_without_an_order_id_is_refused_naming_order_id(alpha, api):
    response = _post(api(alpha), [event_payload(event_id="r-1", type="refund")])

    assert response.json() == {
        "accepted": 0,
        "duplicates": 0,
        "errors": [
            {
                "index": 0,
                "field": "order_id",
                "message": "A refund needs the order_id of the purchase it undoes.",
            }
        ],
    }
    with tenant_context(alpha):
        assert Event.objects.count() == 0


def test_an_order_from_the_sdk_and_from_woocommerce_is_one_purchase_and_a_refund_undoes_it(
    alpha, api, woo_connect, woo_deliver
):
    # Given a list served to shopper 25 with item 794, and the purchase tracked from the
    # storefront with the list's recommendation id
    with tenant_context(alpha):
        ImpressionFactory(
            recommendation_id="rec-1",
            user_id="25",
            item_ids=["794", "5"],
            served_at=timezone.now() - timedelta(hours=1),
        )
    client = api(alpha)
    _post(
        client,
        [_purchase("sdk-1", recommendation_id="rec-1", timestamp=timezone.now().isoformat())],
    )
    with tenant_context(alpha):
        before = analytics_summary(days=7, currency="USD")
    # and WooCommerce reports the same order
    secret = woo_connect(alpha)
    reported = woo_deliver(
        alpha, "order.updated", woo_order(727, status="processing"), secret=secret
    )

    # Then the order line is one purchase (WooCommerce's 794 line was a duplicate)
    assert (reported.json()["purchases"], reported.json()["duplicates"]) == (1, 1)
    assert (before["conversions"], str(before["revenue"])) == (1, "43.98")

    # When the order is refunded in WooCommerce
    woo_deliver(alpha, "order.updated", woo_order(727, status="refunded"), secret=secret)

    # Then the purchase is out of attributed revenue and out of training
    with tenant_context(alpha):
        after = analytics_summary(days=7, currency="USD")
        now = timezone.now()
        training = interactions_read(
            since=now - timedelta(days=30), until=now + timedelta(minutes=1)
        )
    assert (after["conversions"], str(after["revenue"])) == (0, "0.00")
    assert sorted(zip(training.item_ids.tolist(), training.event_types.tolist(), strict=True)) == []


def test_a_refund_leaves_other_lines_of_the_order_in_training(alpha, api):
    client = api(alpha)
    _post(client, [_purchase("p-1"), _purchase("p-2", item_id="93", value=9.0)])

    _post(
        client,
        [event_payload(event_id="r-1", user_id="25", item_id="93", type="refund", order_id="727")],
    )

    with tenant_context(alpha):
        now = timezone.now()
        training = interactions_read(
            since=now - timedelta(days=1), until=now + timedelta(minutes=1)
        )
    assert list(zip(training.item_ids.tolist(), training.event_types.tolist(), strict=True)) == [
        ("794", "purchase")
    ]
