"""One erasure registry (issue 13): every model with a shopper-id field and every Redis key
family holding shopper ids is covered by a registered eraser (or kept on purpose, with a reason),
and a shopper's data written through the real flows leaves no key behind after erasure."""

from __future__ import annotations

import fnmatch
import re

import orjson
import pytest
from django.apps import apps
from django.db import models
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.catalog.models import Event, SessionLink
from apps.catalog.services import events_ingest, shopper_attributes_set, shopper_erase
from apps.core.cache import redis_client, tenant_key
from apps.core.erasure import KEPT, SHOPPER_KEY_FAMILIES, erasers
from apps.recommendations.impressions import impressions_flush
from apps.recommendations.serving import Filters, recommend_buy_again, recommend_for_shopper
from tests.factories import event_payload

pytestmark = pytest.mark.django_db

# Fields that hold a store's shopper id. Platform users (members, recipients) are integer
# foreign keys or BigIntegerFields named user/user_id: not shopper ids.
SHOPPER_FIELD = re.compile(r"^(user_id|shopper|shopper_id|shopper_ids|user_ids)$")


def _shopper_id_fields() -> set[str]:
    return {
        model._meta.label
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if isinstance(field, models.Field)
        and SHOPPER_FIELD.match(field.name)
        and not isinstance(field, models.IntegerField | models.ForeignKey)
    }


def test_every_model_with_a_shopper_id_field_is_erased_or_kept_on_purpose():
    covered = {label for eraser in erasers() for label in eraser.models} | set(KEPT)

    found = _shopper_id_fields()

    assert found == {
        "batchjobs.BatchJobFailure",
        "catalog.Event",
        "catalog.Shopper",
        "catalog.SessionLink",
        "recommendations.Impression",
        "core.ShopperErasure",
        "connectors.ShopperDataRequest",
    }
    assert found - covered == set()


def test_every_redis_key_family_holding_shopper_ids_is_erased_or_kept_on_purpose():
    covered = {family for eraser in erasers() for family in eraser.key_families} | set(KEPT)

    assert set(SHOPPER_KEY_FAMILIES) - covered == set()


def _keys_holding(client, schema: str, user_id: str) -> dict[str, str]:
    """Every Redis key of the store whose name or value mentions `user_id`, with its type."""
    found = {}
    needle = user_id.encode()
    for key in client.scan_iter(match=f"{schema}:*", count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "hash":
            values = [b" ".join([k, v]) for k, v in client.hgetall(key).items()]
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        else:
            values = []
        if needle in key or any(needle in value for value in values):
            found[key.decode()] = kind
    return found


def _family_of(key: str, schema: str, user_id: str) -> str | None:
    for family, pattern in SHOPPER_KEY_FAMILIES.items():
        if fnmatch.fnmatchcase(
            key, tenant_key(pattern.format(user_id=user_id), schema_name=schema)
        ):
            return family
    return None


def test_a_shoppers_keys_from_real_flows_are_declared_and_gone_after_erasure(
    alpha, django_capture_on_commit_callbacks
):
    # Given a shopper with a profile, events (and their recent-events list), a browsing session
    # linked to them (an anonymous event, then one signed in) and served lists (logged and
    # pushed to Redis)
    user = "probe-shopper-7"
    session = "probe-session-7"
    with tenant_context(alpha):
        with django_capture_on_commit_callbacks(execute=True):
            events_ingest(
                rows=[
                    event_payload(event_id=f"p-{n}", user_id=user, type="purchase")
                    for n in range(3)
                ],
                source="seed",
            )
            anonymous = event_payload(event_id="s-0", user_id=None, session_id=session)
            events_ingest(rows=[anonymous], source="seed")
            events_ingest(
                rows=[event_payload(event_id="s-1", user_id=user, session_id=session)],
                source="seed",
            )
        shopper_attributes_set(user_id=user, attributes={"tier": "gold"})
        recommend_for_shopper(user_id=user, filters=Filters(k=5))
        recommend_buy_again(user_id=user, filters=Filters(k=5))
        impressions_flush()
        client = redis_client()
        before = _keys_holding(client, alpha.schema_name, user)

        # When the shopper is erased
        erased = shopper_erase(user_id=user)
        after = _keys_holding(client, alpha.schema_name, user)
        session_after = _keys_holding(client, alpha.schema_name, session)
        left = list(Event.objects.values_list("event_id", flat=True))
        links = SessionLink.objects.count()
        audit = list(
            AuditEvent.objects.filter(action="shopper.erased").values_list("target_id", "details")
        )

    # Then every key that held the shopper belonged to a declared family, and only the
    # tombstone (kept on purpose) still names them
    assert {key: _family_of(key, alpha.schema_name, user) for key in before} == {
        tenant_key("recs", "impressions", schema_name=alpha.schema_name): "impression-buffer",
        tenant_key("recent", user, schema_name=alpha.schema_name): "recent-events",
        tenant_key("recent-at", user, schema_name=alpha.schema_name): "recent-events-latest",
        tenant_key("slink", session, schema_name=alpha.schema_name): "session-links",
    }
    assert after == {tenant_key("erased", schema_name=alpha.schema_name): "hash"}
    # the session's list and link are gone too, with its anonymous event and the link row
    assert session_after == {}
    assert (left, links) == ([], 0)
    assert erased == {
        "events": 4,
        "profile": 1,
        "recent_events": 1,
        "sessions": 2,
        "recommendation_lists": 0,
        "fresh_lists": 0,
        "impressions": 2,
        "platform_data_requests": 0,
        "placement_rotation": 0,
        "batch_job_failures": 0,
        "batch_job_results": 0,
    }
    assert audit == [(user, erased)]
    assert orjson.loads(orjson.dumps(erased)) == erased  # counts only, JSON-safe
