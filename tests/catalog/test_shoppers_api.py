"""Shoppers: attributes, their events (recent first), GDPR export and erasure."""

from datetime import timedelta

import orjson
import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.catalog.models import Event, Shopper
from apps.core.cache import redis_client, tenant_key
from tests.factories import EventFactory, ShopperFactory

pytestmark = pytest.mark.django_db


def _put(client, user_id, body):
    return client.put(
        f"/api/v1/users/{user_id}", data=orjson.dumps(body), content_type="application/json"
    )


def test_put_sets_attributes_creating_the_shopper(alpha, api):
    client = api(alpha)

    created = _put(client, "s-1", {"attributes": {"tier": "gold"}})
    replaced = _put(client, "s-1", {"attributes": {"tier": "silver"}})

    assert created.status_code == 201
    assert replaced.status_code == 200
    assert replaced.json() == {
        "user_id": "s-1",
        "attributes": {"tier": "silver"},
        "first_seen_at": None,
        "last_seen_at": None,
    }
    with tenant_context(alpha):
        assert list(Shopper.objects.values_list("user_id", "attributes")) == [
            ("s-1", {"tier": "silver"})
        ]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"attributes": [1]}, {"attributes": ["Must be a JSON object."]}),
        ({}, {"attributes": ["This field is required."]}),
        ({"attributes": {}, "email": "x@y"}, {"email": ["Unknown field."]}),
    ],
)
def test_put_rejects_bad_attributes_and_writes_nothing(alpha, api, body, fields):
    response = _put(api(alpha), "s-1", body)

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == fields
    with tenant_context(alpha):
        assert Shopper.objects.count() == 0


def test_events_are_listed_recent_first_with_a_cursor(alpha, api):
    now = timezone.now()
    with tenant_context(alpha):
        for hours, event_id in [(3, "old"), (1, "new"), (2, "mid")]:
            EventFactory(event_id=event_id, user_id="s-1", timestamp=now - timedelta(hours=hours))
        EventFactory(event_id="other", user_id="s-2")
    client = api(alpha, scopes=("recommend",))

    first = client.get("/api/v1/users/s-1/events?page_size=2").json()
    second = client.get(first["next"]).json()

    assert [e["event_id"] for e in first["results"]] == ["new", "mid"]
    assert [e["event_id"] for e in second["results"]] == ["old"]
    assert set(first["results"][0]) == {
        "event_id",
        "user_id",
        "item_id",
        "type",
        "value",
        "timestamp",
        "recommendation_id",
        "session_id",
        "order_id",
        "received_at",
    }


def _seed_shopper(tenant, user_id):
    with tenant_context(tenant):
        ShopperFactory(user_id=user_id, attributes={"tier": "gold"})
        EventFactory(event_id=f"{user_id}-1", user_id=user_id, item_id="alpha-only")
        EventFactory(event_id=f"{user_id}-2", user_id=user_id, type="purchase", value=2)
        recs = tenant_key("recs", "v7", "u", user_id)
        redis_client().set(recs, orjson.dumps([{"item_id": "alpha-only", "score": 0.9}]))
        return recs


def test_export_returns_everything_held_and_is_audited(alpha, api):
    _seed_shopper(alpha, "s-1")
    _seed_shopper(alpha, "s-10")  # a shopper whose id extends s-1's must not leak in
    client = api(alpha)

    response = client.get("/api/v1/users/s-1/export")

    body = response.json()
    assert response.status_code == 200
    assert body["user_id"] == "s-1"
    assert body["profile"]["attributes"] == {"tier": "gold"}
    assert [(e["event_id"], e["type"], e["value"]) for e in body["events"]] == [
        ("s-1-1", "view", None),
        ("s-1-2", "purchase", 2.0),
    ]
    assert body["recommendations"] == {"v7:u": [{"item_id": "alpha-only", "score": 0.9}]}
    with tenant_context(alpha):
        audit = list(
            AuditEvent.objects.filter(action="shopper.exported").values_list("target_id", "details")
        )
    assert audit == [("s-1", {"events": 2})]


# Seeded without running on-commit hooks: no recent-events list, no re-scored list.
ERASED = {
    "events": 2,
    "profile": 1,
    "recent_events": 0,
    "sessions": 0,
    "recommendation_lists": 1,
    "fresh_lists": 0,
    "impressions": 0,
    "platform_data_requests": 0,
    "placement_rotation": 0,
    "batch_job_failures": 0,
    "batch_job_results": 0,
}


def test_erase_leaves_no_row_of_the_shopper_and_is_audited(alpha, api):
    recs = _seed_shopper(alpha, "s-1")
    other_recs = _seed_shopper(alpha, "s-10")
    client = api(alpha)

    response = client.delete("/api/v1/users/s-1")
    again = client.delete("/api/v1/users/s-1")

    assert response.status_code == 200
    assert response.json() == {"erased": ERASED}
    assert again.status_code == 404
    with tenant_context(alpha):
        assert Event.objects.filter(user_id="s-1").count() == 0
        assert Shopper.objects.filter(user_id="s-1").count() == 0
        assert Event.objects.filter(user_id="s-10").count() == 2
        audit = list(
            AuditEvent.objects.filter(action="shopper.erased").values_list("target_id", "details")
        )
    assert redis_client().exists(recs) == 0
    assert redis_client().exists(other_recs) == 1
    assert client.get("/api/v1/users/s-1/export").status_code == 404
    assert audit == [("s-1", ERASED)]


def test_erase_needs_ingest_scope(alpha, api):
    _seed_shopper(alpha, "s-1")

    response = api(alpha, scopes=("recommend",)).delete("/api/v1/users/s-1")

    assert response.status_code == 403
    with tenant_context(alpha):
        assert Event.objects.filter(user_id="s-1").count() == 2


def test_store_a_key_cannot_touch_store_b_shoppers(alpha, beta, api, store_client):
    _seed_shopper(beta, "s-1")
    on_beta = store_client(beta, HTTP_AUTHORIZATION=api(alpha).defaults["HTTP_AUTHORIZATION"])
    alpha_client = api(alpha)

    statuses = [
        on_beta.get("/api/v1/users/s-1/events").status_code,
        on_beta.get("/api/v1/users/s-1/export").status_code,
        on_beta.delete("/api/v1/users/s-1").status_code,
        _put(on_beta, "s-1", {"attributes": {}}).status_code,
    ]
    alpha_export = alpha_client.get("/api/v1/users/s-1/export")
    alpha_events = alpha_client.get("/api/v1/users/s-1/events").json()["results"]

    assert statuses == [401, 401, 401, 401]
    assert alpha_export.status_code == 404
    assert alpha_events == []
    with tenant_context(beta):
        assert Event.objects.filter(user_id="s-1").count() == 2
        assert Shopper.objects.get(user_id="s-1").attributes == {"tier": "gold"}
