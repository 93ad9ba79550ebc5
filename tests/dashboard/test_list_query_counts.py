"""List pages and endpoints make as many queries for 3N rows as for N: no query per row."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.notifications.models import Notification
from apps.recommendations import services as recommendation_services
from apps.users.services import membership_invite
from tests.factories import MembershipFactory, ModelVersionFactory, UserFactory, api_key_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("growth_stores")]


def _audit_rows(tenant, count: int) -> None:
    with tenant_context(tenant):
        for n in range(count):
            audit_record(
                action=AuditAction.MODEL_ACTIVATED,
                acting_user=UserFactory(),
                target_type="model_version",
                target_id=str(n),
                details={"n": n},
            )


def _notifications(tenant, user, count: int) -> None:
    with tenant_context(tenant):
        for n in range(count):
            Notification.objects.create(
                user_id=user.pk, kind="training.finished", title=f"Training {n} finished"
            )


def _members(tenant, count: int) -> None:
    for n in range(count):
        MembershipFactory(tenant=tenant, role="analyst")
        membership_invite(
            tenant=tenant,
            email=f"invitee{n}-{count}@example.test",
            role="developer",
            actor_label="test",
        )


def _experiments(tenant, count: int) -> None:
    with tenant_context(tenant):
        for _ in range(count):
            number = ModelVersionFactory().number
            experiment = recommendation_services.experiment_create(
                name=f"e{number}",
                arms=[
                    {"name": "a", "traffic_percent": 50},
                    {"name": "b", "model_version": number, "traffic_percent": 50},
                ],
            )
            recommendation_services.experiment_stop(experiment=experiment)


def test_audit_page_queries_do_not_grow_with_rows(alpha, member_client, page_queries):
    client, _ = member_client(alpha, "owner")
    _audit_rows(alpha, 2)
    few = page_queries(client, "/audit/")
    _audit_rows(alpha, 4)

    assert page_queries(client, "/audit/") == few


def test_notifications_page_queries_do_not_grow_with_rows(alpha, member_client, page_queries):
    client, user = member_client(alpha, "analyst")
    _notifications(alpha, user, 2)
    few = page_queries(client, "/notifications/")
    _notifications(alpha, user, 4)

    assert page_queries(client, "/notifications/") == few


def test_team_page_queries_do_not_grow_with_members(alpha, member_client, page_queries):
    client, _ = member_client(alpha, "owner")
    _members(alpha, 2)
    few = page_queries(client, "/team/")
    _members(alpha, 4)

    assert page_queries(client, "/team/") == few


def test_experiments_api_queries_do_not_grow_with_experiments(alpha, store_client, page_queries):
    _, key = api_key_for(alpha, scopes=("manage",))
    client = store_client(alpha, HTTP_AUTHORIZATION=f"Bearer {key}")
    _experiments(alpha, 1)
    few = page_queries(client, "/api/v1/experiments/")
    _experiments(alpha, 2)

    assert page_queries(client, "/api/v1/experiments/") == few
