"""The SQL of event ingestion (apps.catalog.services.events_ingest), kept apart so the service
reads as what it does.

A batch's rows reach the statements through a staging source: the staging table below, filled
by COPY, for a large batch; the rows themselves as parameters (STAGING_ROWS, one array per
column) for a small one. The statements are the same text either way (`events_insert`,
`shoppers_upsert`, `sessions_link` put the source in). Why two: COPY into a table is what makes
a large batch fast (issue 2's 25,000 events/s), but for one event, the integration's usual
"track this now" call, the table costs two more round trips (the existence check and the COPY)
and a truncation at commit, about a third of PostgreSQL's time for the batch.
"""

# The batch goes to a session-local staging table by COPY, then into catalog_event with one
# INSERT ... SELECT that skips event_ids already stored and returns what it inserted. ON COMMIT
# DELETE ROWS empties the staging table at commit without a catalog change per batch.
# The table is analysed once, empty, when the session creates it: a table never analysed is
# planned as if it held ten pages of rows whatever it holds, which made PostgreSQL hash the
# whole catalog_event (a sequential scan, ~50 ms at 100,000 events) to check a batch of one.
# Analysed, its size is read from the table itself, and a small batch probes the indexes.
STAGING_DDL = """
DO $$
BEGIN
    IF to_regclass('pg_temp.catalog_event_staging') IS NULL THEN
        CREATE TEMP TABLE catalog_event_staging (
            event_id text, user_id text, item_id text, type text, value float8,
            "timestamp" timestamptz, recommendation_id text, session_id text, order_id text
        ) ON COMMIT DELETE ROWS;
        ANALYZE pg_temp.catalog_event_staging;
    END IF;
END
$$
"""
STAGING_COPY = (
    "COPY pg_temp.catalog_event_staging "
    '(event_id, user_id, item_id, type, value, "timestamp", recommendation_id, session_id, '
    "order_id) FROM STDIN (FORMAT BINARY)"
)
STAGING_TYPES = ["text", "text", "text", "text", "float8", "timestamptz", "text", "text", "text"]
STAGING_TABLE = "pg_temp.catalog_event_staging"
# A batch of at most this many rows is sent as parameters: the planner sees the arrays' lengths
# (unnest's row estimate), so a small batch probes the indexes as it does from the table.
SMALL_BATCH_ROWS = 100
STAGING_ROWS = (
    "(SELECT * FROM unnest("
    + ", ".join(f"%s::{kind}[]" for kind in STAGING_TYPES)
    + ') AS r(event_id, user_id, item_id, type, value, "timestamp", recommendation_id, '
    "session_id, order_id))"
)
# Rows are taken in a fixed order (event_id, item_id) so that concurrent batches sharing keys
# wait on each other instead of deadlocking. Events of items not in the catalog create stub
# items: recommended at once, listed as catalog once the store sends the item itself.
_EVENTS_INSERT = """
WITH inserted AS (
    INSERT INTO catalog_event
        (event_id, user_id, item_id, type, value, "timestamp", recommendation_id, item_price,
         received_at, session_id, order_id)
    SELECT s.event_id, s.user_id, s.item_id, s.type, s.value, s."timestamp",
           s.recommendation_id,
           -- a purchase keeps the item's price of the moment (attributed revenue)
           CASE WHEN s.type = 'purchase'
                THEN (SELECT c.price FROM catalog_item c WHERE c.item_id = s.item_id) END,
           now(), s.session_id, s.order_id
    FROM {staging} s
    ORDER BY s.event_id
    -- no target: a repeated event_id and a repeated (order_id, item_id) purchase or refund
    -- (event_unique_order_line) are both skipped as duplicates
    ON CONFLICT DO NOTHING
    RETURNING item_id, type, "timestamp"
), stubs AS (
    INSERT INTO catalog_item (item_id, title, description, categories, price, in_stock,
                              attributes, is_hidden, is_stub, created_at, updated_at)
    SELECT missing.item_id, '', '', '{{}}', NULL, true, '{{}}', false, true, now(), now()
    FROM (
        SELECT DISTINCT i.item_id FROM inserted i
        WHERE NOT EXISTS (SELECT 1 FROM catalog_item c WHERE c.item_id = i.item_id)
    ) missing
    ORDER BY missing.item_id
    ON CONFLICT (item_id) DO NOTHING
)
-- per type: events inserted, and those of them that happened today (UTC): the dashboard's
-- "today's events" counts what happened today, not a history loaded today
SELECT type, count(*),
       count(*) FILTER (WHERE "timestamp" >= date_trunc('day', now() AT TIME ZONE 'UTC')
                                             AT TIME ZONE 'UTC')
FROM inserted GROUP BY type
"""
# Last statement before commit: shopper rows stay locked for as short a time as possible.
_SHOPPERS_UPSERT = """
INSERT INTO catalog_shopper (user_id, attributes, first_seen_at, last_seen_at, created_at,
                             updated_at)
SELECT user_id, '{{}}', min("timestamp"), max("timestamp"), now(), now()
FROM {staging} s
WHERE user_id IS NOT NULL
GROUP BY user_id
ORDER BY user_id
ON CONFLICT (user_id) DO UPDATE SET
    first_seen_at = LEAST(catalog_shopper.first_seen_at, EXCLUDED.first_seen_at),
    last_seen_at = GREATEST(catalog_shopper.last_seen_at, EXCLUDED.last_seen_at),
    updated_at = EXCLUDED.updated_at
WHERE catalog_shopper.first_seen_at IS NULL
   OR catalog_shopper.first_seen_at > EXCLUDED.first_seen_at
   OR catalog_shopper.last_seen_at < EXCLUDED.last_seen_at
"""
# A session seen with a user id is linked to that shopper; the first shopper wins (a mapping:
# the session's stored events are not rewritten).
_SESSIONS_LINK = """
INSERT INTO catalog_sessionlink (session_id, user_id, created_at)
SELECT DISTINCT ON (session_id) session_id, user_id, now()
FROM {staging} s
WHERE session_id IS NOT NULL AND user_id IS NOT NULL
ORDER BY session_id, "timestamp"
ON CONFLICT (session_id) DO NOTHING
"""


def events_insert(staging: str = STAGING_TABLE) -> str:
    return _EVENTS_INSERT.format(staging=staging)


def shoppers_upsert(staging: str = STAGING_TABLE) -> str:
    return _SHOPPERS_UPSERT.format(staging=staging)


def sessions_link(staging: str = STAGING_TABLE) -> str:
    return _SESSIONS_LINK.format(staging=staging)
