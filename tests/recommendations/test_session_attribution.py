"""A session list (served to an anonymous visitor's `session_id`) is credited only with the
clicks and purchases of that session: the impression records the session, and attribution
(selectors._ATTRIBUTED_SQL, used by analytics and experiment results) checks it."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog.services import events_ingest
from apps.core.cache import redis_client
from apps.recommendations import impressions
from apps.recommendations.cache import impressions_key
from apps.recommendations.models import Impression
from apps.recommendations.selectors import analytics_summary
from tests.factories import ImpressionFactory, ItemFactory

pytestmark = pytest.mark.django_db


def _click(rec: str, item: str, *, session: str | None, user: str | None = None, **extra):
    row = {
        "item_id": item,
        "type": "click",
        "recommendation_id": rec,
        "timestamp": (timezone.now() - timedelta(minutes=1)).isoformat(),
        **extra,
    }
    if session is not None:
        row["session_id"] = session
    if user is not None:
        row["user_id"] = user
    return row


def _summary() -> dict:
    found = analytics_summary(days=1, currency="EUR")
    return {key: found[key] for key in ("lists_served", "clicks", "conversions")}


@pytest.fixture
def session_lists(alpha):
    """Four session lists of visitor `visit-1` in alpha, and one trending list (no session)."""
    served = timezone.now() - timedelta(minutes=10)
    with tenant_context(alpha):
        ItemFactory(item_id="a", price="10.00")
        for rec in ("s1", "s2", "s3", "s4"):
            ImpressionFactory(
                recommendation_id=rec,
                surface="session",
                user_id="",
                session_id="visit-1",
                item_ids=["a"],
                served_at=served,
            )
        ImpressionFactory(
            recommendation_id="t1", surface="trending", user_id="", item_ids=["a"], served_at=served
        )
    connection.set_schema_to_public()


def test_only_the_sessions_own_events_are_attributed(alpha, session_lists):
    with tenant_context(alpha):
        result = events_ingest(
            rows=[
                # the visitor of the session clicks s1 anonymously ...
                _click("s1", "a", session="visit-1"),
                # ... and buys from s2 after signing in (same session, now with a user id)
                {
                    **_click("s2", "a", session="visit-1", user="u1"),
                    "type": "purchase",
                    "order_id": "o-1",
                },
                # another visitor who got s3's id clicks it: not theirs
                _click("s3", "a", session="visit-2"),
                # a shopper without a session clicks s4: not the session's
                _click("s4", "a", session=None, user="u2"),
                # the trending list has no session: anyone's click counts
                _click("t1", "a", session="visit-9"),
            ],
            source="seed",
        )
        assert (result.accepted, result.errors) == (5, [])
        summary = _summary()
    connection.set_schema_to_public()

    assert summary == {"lists_served": 5, "clicks": 2, "conversions": 1}


def test_a_session_of_the_same_id_in_another_store_credits_nothing(alpha, beta, session_lists):
    # given a visitor of store B with the same session id, sending the same recommendation ids
    with tenant_context(beta):
        ItemFactory(item_id="a")
        result = events_ingest(
            rows=[_click(rec, "a", session="visit-1") for rec in ("s1", "s2", "s3", "s4")],
            source="seed",
        )
        assert result.accepted == 4
        beta_summary = _summary()
    with tenant_context(alpha):
        alpha_summary = _summary()
    connection.set_schema_to_public()

    assert alpha_summary == {"lists_served": 5, "clicks": 0, "conversions": 0}
    assert beta_summary == {"lists_served": 0, "clicks": 0, "conversions": 0}


def test_the_served_session_is_logged_with_the_impression(alpha):
    schema = alpha.schema_name
    with tenant_context(alpha):
        # Nothing of another test: flush this process's buffer first, then empty the queue.
        impressions.impressions_flush()
        redis_client().delete(impressions_key(schema))
        impressions.impression_log(
            schema_name=schema,
            recommendation_id="logged-1",
            surface="session",
            user_id="",
            model_version_number=None,
            strategy="trending",
            item_ids=["a"],
            session_id="visit-7",
        )
        impressions.impressions_flush()
        # a record queued by a web process of the previous release (no session field)
        old = orjson.loads(redis_client().lindex(impressions_key(schema), 0))[:9]
        old[0] = "logged-old"
        redis_client().rpush(impressions_key(schema), orjson.dumps(old))

        written = impressions.impressions_persist()
        rows = dict(Impression.objects.values_list("recommendation_id", "session_id"))
    connection.set_schema_to_public()

    assert written == 2
    assert rows == {"logged-1": "visit-7", "logged-old": ""}


def test_a_session_list_served_over_http_is_logged_with_its_session(alpha, key_client):
    schema = alpha.schema_name
    with tenant_context(alpha):
        impressions.impressions_flush()
        redis_client().delete(impressions_key(schema))
        ItemFactory(item_id="sess-item")
        events_ingest(rows=[_click("none", "sess-item", session="visit-9")])
    connection.set_schema_to_public()

    answer = key_client(alpha).get("/api/v1/recommendations/sessions/visit-9")

    assert answer.status_code == 200
    with tenant_context(alpha):
        impressions.impressions_flush()
        impressions.impressions_persist()
        logged = Impression.objects.get(recommendation_id=answer.json()["recommendation_id"])
    assert (logged.surface, logged.session_id, logged.user_id) == ("session", "visit-9", "")
