"""The database refuses UPDATE and DELETE on the audit table, in every schema.

Each schema gets its own copy of the function (created unqualified, so in the schema being
migrated) and its own trigger: store provisioning replays these statements into the new
schema, and no two provisionings ever replace one shared function concurrently.
"""

from django.db import migrations

REFUSE_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_event_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % on %.% refused',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""

CREATE_TRIGGER = """
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;
CREATE TRIGGER audit_event_append_only
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_refuse_change();
"""

DROP_TRIGGER = "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;"


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunSQL(REFUSE_FUNCTION, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(CREATE_TRIGGER, reverse_sql=DROP_TRIGGER),
    ]
