"""Concurrent writers on one store's trail, each in its own connection and committed
transactions as in production: the chain stays one linear, verifiable list."""

import threading
import uuid

import pytest
from django.db import connection, connections, transaction
from django.db.models import Count
from django_tenants.utils import tenant_context

from apps.audit.actions import AuditAction
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_chain_verify
from apps.audit.services import audit_record
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_create
from tests.transactions import committed

pytestmark = pytest.mark.django_db

WRITERS = 4
ROUNDS = 15  # each round: one single-event transaction and one two-event transaction


def _drop(tenant: Tenant) -> None:
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
    Tenant.objects.filter(pk=tenant.pk).delete()


def test_concurrent_appends_keep_one_linear_chain(db):
    slug = f"audit-race-{uuid.uuid4().hex[:6]}"
    tenant = committed(lambda: tenant_create(slug=slug, name="Audit race"))
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with tenant_context(tenant):
                start.wait()
                for round_ in range(ROUNDS):
                    audit_record(action=AuditAction.ITEM_DELETED, target_id=f"{n}-{round_}-a")
                    with transaction.atomic():
                        audit_record(action=AuditAction.ITEM_DELETED, target_id=f"{n}-{round_}-b")
                        audit_record(action=AuditAction.ITEM_DELETED, target_id=f"{n}-{round_}-c")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    try:
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

        def inspect():
            with tenant_context(tenant):
                forks = (
                    AuditEvent.objects.values("prev_hash")
                    .annotate(n=Count("id"))
                    .filter(n__gt=1)
                    .count()
                )
                report = audit_chain_verify()
                return (
                    AuditEvent.objects.filter(action="item.deleted").count(),
                    forks,
                    report.ok,
                    report.checked == AuditEvent.objects.count(),
                )

        assert committed(inspect) == (WRITERS * ROUNDS * 3, 0, True, True)
    finally:
        committed(lambda: _drop(tenant))
