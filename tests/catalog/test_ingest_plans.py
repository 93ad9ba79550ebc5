"""A batch's cost follows the batch, not the store's size. A small batch is sent as arrays, whose
lengths the planner sees; a large one goes through the staging table, planned by what it holds
(analysed once, when a session creates it; a table never analysed is planned as ten pages of
rows). Either way a batch of one event probes the indexes of a large store's tables."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog import event_sql
from apps.catalog.models import Event, Item, SessionLink, Shopper
from apps.catalog.services import events_ingest, items_upsert
from tests.factories import event_payload

pytestmark = pytest.mark.django_db

HISTORY_EVENTS = 20_000
# Large enough that probing its index for a few rows beats reading it whole, small enough
# that a batch planned as ten pages' worth of rows would read it whole instead.
CATALOG_ITEMS = 60_000


def _plan(cursor, sql: str) -> str:
    cursor.execute(f"EXPLAIN {sql}")
    return "\n".join(line for (line,) in cursor.fetchall())


def _staging_reltuples(cursor) -> float:
    cursor.execute(
        "SELECT reltuples FROM pg_class WHERE oid = 'pg_temp.catalog_event_staging'::regclass"
    )
    return cursor.fetchone()[0]


def test_a_session_analyses_its_staging_table_when_it_creates_it(alpha):
    with tenant_context(alpha), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS pg_temp.catalog_event_staging")
        events_ingest(
            rows=[
                event_payload(event_id=f"first-{n}") for n in range(event_sql.SMALL_BATCH_ROWS + 1)
            ]
        )

        # -1: never analysed (planned as ten pages whatever it holds).
        assert _staging_reltuples(cursor) >= 0


@pytest.fixture
def large_store(alpha):
    with tenant_context(alpha), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO catalog_item (item_id, title, description, categories, price, in_stock,
                                      attributes, is_hidden, is_stub, created_at, updated_at)
            SELECT 'item-' || g, 'Item', '', '{}', 10, true, '{}', false, false, now(), now()
            FROM generate_series(1, %s) g
            """,
            [CATALOG_ITEMS],
        )
        cursor.execute(
            """
            INSERT INTO catalog_event (event_id, user_id, item_id, type, value, "timestamp",
                                       received_at)
            SELECT 'history-' || g, 'shopper-' || (g %% 900), 'item-' || (g %% %s + 1),
                   'view', NULL, now() - interval '1 day', now()
            FROM generate_series(1, %s) g
            """,
            [CATALOG_ITEMS, HISTORY_EVENTS],
        )
        cursor.execute("ANALYZE catalog_event")
        cursor.execute("ANALYZE catalog_item")
    return alpha


def test_a_one_event_batch_probes_the_indexes_of_a_large_store(large_store):
    with tenant_context(large_store), connection.cursor() as cursor:
        # A small batch is sent as parameters, one array per column (no staging table).
        row = ["next", "shopper-1", "item-2", "purchase", None, timezone.now(), None, None, None]
        params = [[value] for value in row]
        cursor.execute("EXPLAIN " + event_sql.events_insert(event_sql.STAGING_ROWS), params)
        plan = "\n".join(line for (line,) in cursor.fetchall())

    assert "Seq Scan on catalog_event " not in plan, plan
    assert "Seq Scan on catalog_item " not in plan, plan


def test_a_large_batch_is_planned_by_what_the_staging_table_holds(large_store):
    with tenant_context(large_store), connection.cursor() as cursor:
        # The batch creates the session's staging table as a new session would: earlier
        # tests on this connection left theirs with pages of deleted rows (their transactions
        # never commit, so it is never truncated).
        cursor.execute("DROP TABLE IF EXISTS pg_temp.catalog_event_staging")
        events_ingest(
            rows=[
                event_payload(event_id=f"first-{n}", item_id=f"item-{n + 1}")
                for n in range(event_sql.SMALL_BATCH_ROWS + 1)
            ]
        )
        cursor.execute(
            "INSERT INTO pg_temp.catalog_event_staging "
            '(event_id, user_id, item_id, type, value, "timestamp") '
            "VALUES ('next', 'shopper-1', 'item-2', 'purchase', NULL, now())"
        )
        plan = _plan(cursor, event_sql.events_insert())
        cursor.execute("DELETE FROM pg_temp.catalog_event_staging")

    assert "Seq Scan on catalog_event " not in plan, plan
    assert "Seq Scan on catalog_item " not in plan, plan


def _stored(tenant) -> tuple[list, list, list, list]:
    with tenant_context(tenant):
        events = sorted(
            Event.objects.values_list(
                "event_id", "user_id", "item_id", "type", "value", "timestamp",
                "recommendation_id", "item_price", "session_id", "order_id",
            ),
            key=repr,
        )  # fmt: skip
        items = sorted(
            Item.objects.filter(item_id__in=["known", "never-sent"]).values_list(
                "item_id", "is_stub", "is_hidden", "price"
            )
        )
        shoppers = sorted(Shopper.objects.values_list("user_id", "first_seen_at", "last_seen_at"))
        links = sorted(SessionLink.objects.values_list("session_id", "user_id"))
    return events, items, shoppers, links


def test_both_staging_sources_store_a_batch_alike(alpha, beta, monkeypatch):
    # Given two stores holding the same item and event, and one batch with every case the
    # statements handle: a stored event id, a duplicate order line, an unknown item (a stub),
    # a priced purchase, a rating, an anonymous session event and a session signing in
    now = timezone.now()
    moment = (now - timedelta(minutes=5)).isoformat()
    for tenant in (alpha, beta):
        with tenant_context(tenant):
            items_upsert(rows=[{"item_id": "known", "title": "Known", "price": "12.50"}])
            events_ingest(rows=[event_payload(event_id="old", item_id="known", timestamp=moment)])
    batch = [
        event_payload(event_id="old", item_id="known"),
        event_payload(event_id="p-1", type="purchase", item_id="known", order_id="o-1"),
        event_payload(event_id="p-2", type="purchase", item_id="known", order_id="o-1"),
        event_payload(event_id="stub", item_id="never-sent", user_id="shopper-2"),
        event_payload(event_id="r-1", type="rating", value=4, item_id="known"),
        event_payload(event_id="s-1", user_id=None, session_id="visit-1", item_id="known"),
        event_payload(
            event_id="s-2",
            user_id="shopper-3",
            session_id="visit-1",
            item_id="known",
            timestamp=moment,
        ),
    ]

    # When it is ingested as a small batch in one store and through the table in the other
    with tenant_context(alpha):
        small = events_ingest(rows=batch)
    monkeypatch.setattr(event_sql, "SMALL_BATCH_ROWS", 0)
    with tenant_context(beta):
        large = events_ingest(rows=batch)

    # Then both answer and store the same
    assert small.as_dict() == large.as_dict()
    assert (small.accepted, small.duplicates) == (5, 2)
    assert _stored(alpha) == _stored(beta)
