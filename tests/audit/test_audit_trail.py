"""The audit trail: one chained row per action, in the schema of the change; the database
refuses UPDATE and DELETE; tampering behind the trigger's back is found by the verifier."""

import ast
import csv
import io
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import InternalError, ProgrammingError
from django_tenants.utils import tenant_context

from apps.audit.actions import AuditAction
from apps.audit.chain import GENESIS_HASH, chain_hash
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_chain_verify
from apps.audit.services import CSV_COLUMNS, audit_export_csv, audit_record
from apps.core.errors import ApplicationError
from apps.tenants.services import tenant_create, tenant_reactivate, tenant_suspend
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


THREE = [AuditAction.ITEM_DELETED, AuditAction.SHOPPER_ERASED, AuditAction.SHOPPER_EXPORTED]


def _record_three(tenant):
    with tenant_context(tenant):
        return [
            audit_record(
                action=THREE[n],
                target_type="thing",
                target_id=str(n),
                details={"n": n, "nested": {"b": 2, "a": [1, 2.5]}},
            )
            for n in range(3)
        ]


def test_events_are_chained_and_written_to_the_current_schema(alpha, beta):
    events = _record_three(alpha)

    assert events[0].prev_hash == GENESIS_HASH
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash
    with tenant_context(alpha):
        stored = list(AuditEvent.objects.order_by("id"))
        assert [chain_hash(e.prev_hash, e) for e in stored] == [e.hash for e in events]
        assert audit_chain_verify().checked == 3
    with tenant_context(beta):
        assert AuditEvent.objects.count() == 0
    assert AuditEvent.objects.filter(action__in=THREE).count() == 0


def test_actor_and_request_context_are_recorded(alpha, rf):
    user = UserFactory(email="ann@alpha.test")
    request = rf.get(
        "/", HTTP_USER_AGENT="pytest-agent", HTTP_X_REQUEST_ID="req-42", REMOTE_ADDR="10.1.2.3"
    )
    request.user = user

    with tenant_context(alpha):
        event = audit_record(
            action=AuditAction.MEMBER_INVITED, request=request, details={"role": "admin"}
        )

    assert (event.actor_type, event.actor_user_id, event.actor_label) == (
        "user",
        user.pk,
        "ann@alpha.test",
    )
    assert (event.ip, event.user_agent, event.request_id) == ("10.1.2.3", "pytest-agent", "req-42")


def test_a_system_event_without_actor(alpha):
    with tenant_context(alpha):
        event = audit_record(action=AuditAction.MODEL_ACTIVATED)

    assert (event.actor_type, event.actor_user_id, event.actor_label) == ("system", None, "system")


@pytest.mark.parametrize("action", ["login", "member.invited", "test.step0", ""])
def test_only_audit_action_members_are_accepted(alpha, action):
    with tenant_context(alpha), pytest.raises(ValueError, match="AuditAction members") as raised:
        audit_record(action=action)

    assert str(raised.value) == f"Audit actions are AuditAction members, not {action!r}."
    with tenant_context(alpha):
        assert AuditEvent.objects.count() == 0


def test_every_action_keeps_its_stored_string():
    # Stored rows and exports hold these strings: a member's value never changes.
    assert sorted(action.value for action in AuditAction) == [
        "api_key.created",
        "api_key.identity_secret_rotated",
        "api_key.revoked",
        "audit.exported",
        "auth.login",
        "auth.login_failed",
        "batch_job.cancelled",
        "batch_job.created",
        "billing.customer_created",
        "billing.invoice_paid",
        "billing.payment_action_required",
        "billing.payment_failed",
        "billing.payment_recovered",
        "billing.plan_changed",
        "billing.quota_threshold_reached",
        "billing.subscription_updated",
        "billing.trial_will_end",
        "connector.connected",
        "connector.customer_redacted",
        "connector.data_requested",
        "connector.secret_set",
        "connector.shop_redacted",
        "experiment.created",
        "experiment.stopped",
        "item.deleted",
        "member.invitation_declined",
        "member.invitation_revoked",
        "member.invited",
        "member.joined",
        "member.ownership_transferred",
        "member.removed",
        "member.role_changed",
        "mfa.disabled",
        "mfa.enabled",
        "mfa.recovery_codes_created",
        "mfa.recovery_codes_regenerated",
        "mfa.recovery_codes_removed",
        "model.activated",
        "model.rolled_back",
        "model.trained",
        "model.training_failed",
        "model.training_started",
        "placement.created",
        "placement.deleted",
        "placement.updated",
        "shopper.erased",
        "shopper.exported",
        "store.currency_changed",
        "store.renamed",
        "store.seen_types_changed",
        "tenant.created",
        "tenant.reactivated",
        "tenant.suspended",
        "usage.anomaly_flagged",
        "webhook.created",
        "webhook.deleted",
        "webhook.resent",
        "webhook.secret_rotated",
    ]


def test_every_call_site_passes_a_member():
    """No audit call in apps/ spells an action as a string (a typo would only fail at run time)."""
    calls = ("audit_record", "billing_audit", "store_audit", "_audit")
    literal = []
    for path in (Path(settings.BASE_DIR) / "apps").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or ast.unparse(node.func) not in calls:
                continue
            values = [kw.value for kw in node.keywords if kw.arg == "action"] + node.args[:1]
            literal += [f"{path.name}:{node.lineno}" for v in values if isinstance(v, ast.Constant)]

    assert literal == []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET action = 'x.y'",
        "DELETE FROM audit_auditevent",
    ],
)
@pytest.mark.parametrize("schema", ["store_alpha", "public"])
def test_the_database_refuses_update_and_delete(alpha, statement, schema):
    _record_three(alpha)
    audit_record(action=AuditAction.TENANT_CREATED)
    context = tenant_context(alpha) if schema == "store_alpha" else _public()

    with context:
        before = list(AuditEvent.objects.order_by("id").values_list("id", "action"))
        with (
            pytest.raises((InternalError, ProgrammingError)) as raised,
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
        after = list(AuditEvent.objects.order_by("id").values_list("id", "action"))

    assert "audit events are append-only" in str(raised.value)
    assert f"on {schema}.audit_auditevent refused" in str(raised.value)
    assert after == before
    assert len(before) >= 1


class _public:
    def __enter__(self):
        connection.set_schema_to_public()

    def __exit__(self, *exc):
        connection.set_schema_to_public()


def _behind_the_trigger(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = origin")


def test_an_altered_row_is_reported_by_verify_audit_chain(alpha, capsys):
    events = _record_three(alpha)
    call_command("verify_audit_chain", tenant="alpha")
    assert capsys.readouterr().out == "Audit chain of alpha intact: 3 events verified.\n"

    with tenant_context(alpha):
        _behind_the_trigger(
            "UPDATE audit_auditevent SET details = %s WHERE id = %s",
            ['{"n": 99}', events[1].pk],
        )
    with pytest.raises(CommandError) as raised:
        call_command("verify_audit_chain", tenant="alpha")

    assert str(raised.value) == (
        f"Audit chain of alpha broken at event {events[1].pk}: hash does not match the row's "
        "content (1 events verified before it)."
    )


def test_a_deleted_row_is_reported_by_verify_audit_chain(alpha):
    events = _record_three(alpha)

    with tenant_context(alpha):
        _behind_the_trigger("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
        report = audit_chain_verify()

    assert (report.ok, report.first_broken_id, report.checked) == (False, events[2].pk, 1)
    assert report.reason == "prev_hash does not match the previous row's hash"


def test_tenant_lifecycle_is_audited_once_each_in_the_operators_trail(db):
    owner = UserFactory(email="founder@kappa.test")
    operator = UserFactory(email="ops@shelfsense.test", is_staff=True)

    tenant = tenant_create(slug="kappa", name="Kappa", owner=owner)
    tenant_suspend(tenant=tenant, reason="unpaid", acting_user=operator)
    tenant_reactivate(tenant=tenant, acting_user=operator)

    connection.set_schema_to_public()
    events = list(AuditEvent.objects.filter(target_type="tenant", target_id="kappa").order_by("id"))
    assert [(e.action, e.actor_label) for e in events] == [
        ("tenant.created", "founder@kappa.test"),
        ("tenant.suspended", "ops@shelfsense.test"),
        ("tenant.reactivated", "ops@shelfsense.test"),
    ]
    assert events[0].details == {"slug": "kappa", "name": "Kappa", "owner": "founder@kappa.test"}
    assert events[1].details == {
        "before": {"status": "active"},
        "after": {"status": "suspended"},
        "reason": "unpaid",
    }
    assert events[2].details == {"before": {"status": "suspended"}, "after": {"status": "active"}}
    with tenant_context(tenant):
        assert AuditEvent.objects.count() == 0
    assert audit_chain_verify().ok


def test_a_failed_change_leaves_no_audit_row(alpha):
    before = AuditEvent.objects.count()

    with pytest.raises(ApplicationError) as raised:
        tenant_create(slug="alpha", name="Again")

    assert (raised.value.status_code, raised.value.code) == (409, "conflict")
    assert raised.value.message == "A store with this address already exists."
    assert raised.value.fields == {"slug": ["taken"]}
    assert AuditEvent.objects.count() == before


def test_csv_export_writes_every_event_and_audits_itself(alpha):
    events = _record_three(alpha)
    out = io.StringIO()

    with tenant_context(alpha):
        count = audit_export_csv(out=out, actor_label="tester")
        exported = AuditEvent.objects.get(action="audit.exported")

    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert count == 3
    assert rows[0] == list(CSV_COLUMNS)
    assert [row[2] for row in rows[1:]] == ["item.deleted", "shopper.erased", "shopper.exported"]
    assert rows[1][9] == '{"n":0,"nested":{"a":[1,2.5],"b":2}}'
    assert rows[3][-1] == events[2].hash
    assert exported.details == {"events": 3, "since": None, "until": None}
    assert exported.actor_label == "tester"


def test_csv_export_cells_that_a_spreadsheet_would_run_are_marked_as_text(alpha):
    planted = ["=2+5+cmd|' /C calc'!A0", "+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1"]
    with tenant_context(alpha):
        for target_id in planted:
            audit_record(
                action=THREE[0],
                target_type="thing",
                target_id=target_id,
                actor_label='api_key:abc (=HYPERLINK("http://x"))',
            )
        audit_record(action=THREE[1], target_type="thing", target_id="plain-1")
        out = io.StringIO()
        audit_export_csv(out=out)

    rows = list(csv.reader(io.StringIO(out.getvalue())))[1:]
    assert [row[CSV_COLUMNS.index("target_id")] for row in rows] == [
        *(f"'{value}" for value in planted),
        "plain-1",
    ]
    assert rows[0][CSV_COLUMNS.index("actor_label")] == 'api_key:abc (=HYPERLINK("http://x"))'


def test_export_audit_csv_command_writes_a_file(alpha, tmp_path):
    _record_three(alpha)
    target = tmp_path / "alpha.csv"

    call_command("export_audit_csv", tenant="alpha", output=str(target))

    rows = list(csv.reader(target.open()))
    assert len(rows) == 4
    assert rows[0][0] == "id"


@pytest.mark.parametrize("since", ["2020-01-01T00:00:00+16:00", "2020-01-01T00:00:00-23:59:30"])
def test_export_audit_csv_takes_any_offset_python_reads(alpha, tmp_path, since):
    _record_three(alpha)
    target = tmp_path / "alpha.csv"

    call_command("export_audit_csv", tenant="alpha", output=str(target), since=since)

    assert len(list(csv.reader(target.open()))) == 4


@pytest.mark.parametrize("since", ["yesterday", "0001-01-01T00:00:00+01:00"])
def test_export_audit_csv_refuses_what_is_not_a_moment(alpha, tmp_path, since):
    with pytest.raises(CommandError, match="Not an ISO date/time"):
        call_command("export_audit_csv", tenant="alpha", output=str(tmp_path / "x"), since=since)


def test_verify_and_export_refuse_unknown_stores(db):
    with pytest.raises(CommandError, match=r"No store with slug 'nope'\."):
        call_command("verify_audit_chain", tenant="nope")
