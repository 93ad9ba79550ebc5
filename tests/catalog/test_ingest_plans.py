"""A batch's cost follows the batch, not the store's size: the staging table is planned by
what it holds (analysed once, when a session creates it; a table never analysed is planned as
ten pages of rows), so a batch of one event probes the indexes of a large store's tables."""

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.catalog import event_sql
from apps.catalog.services import events_ingest
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
        events_ingest(rows=[event_payload(event_id="first")])

        # -1: never analysed (planned as ten pages whatever it holds).
        assert _staging_reltuples(cursor) >= 0


def test_a_one_event_batch_probes_the_indexes_of_a_large_store(alpha):
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

        # The batch creates the session's staging table as a new session would: earlier
        # tests on this connection left theirs with pages of deleted rows (their transactions
        # never commit, so it is never truncated).
        cursor.execute("DROP TABLE IF EXISTS pg_temp.catalog_event_staging")
        events_ingest(rows=[event_payload(event_id="first", item_id="item-1")])
        cursor.execute(
            "INSERT INTO pg_temp.catalog_event_staging "
            '(event_id, user_id, item_id, type, value, "timestamp") '
            "VALUES ('next', 'shopper-1', 'item-2', 'purchase', NULL, now())"
        )
        plan = _plan(cursor, event_sql.EVENTS_INSERT)
        cursor.execute("DELETE FROM pg_temp.catalog_event_staging")

    assert "Seq Scan on catalog_event " not in plan, plan
    assert "Seq Scan on catalog_item " not in plan, plan
