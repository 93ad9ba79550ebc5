"""API key services: validation writes nothing, each change audited exactly once."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.apikeys.models import ApiKey
from apps.apikeys.services import api_key_create, api_key_revoke
from apps.audit.models import AuditEvent
from apps.core.errors import ApplicationError
from tests.factories import UserFactory, api_key_for

pytestmark = pytest.mark.django_db


def test_create_is_audited_once_without_the_secret(alpha):
    user = UserFactory(email="dev@alpha.test")

    api_key, plaintext = api_key_for(alpha, name="Sync", scopes=["ingest"], acting_user=user)

    with tenant_context(alpha):
        events = list(AuditEvent.objects.filter(action="api_key.created"))
    assert len(events) == 1
    event = events[0]
    assert (event.actor_type, event.actor_user_id, event.actor_label) == (
        "user",
        user.pk,
        "dev@alpha.test",
    )
    assert (event.target_type, event.target_id) == ("api_key", str(api_key.pk))
    assert event.details == {
        "name": "Sync",
        "prefix": api_key.prefix,
        "scopes": ["ingest"],
        "expires_at": None,
    }
    assert plaintext.rsplit("_", 1)[-1] not in str(event.details)
    assert api_key.created_by_id == user.pk


@pytest.mark.parametrize(
    ("kwargs", "fields"),
    [
        ({"name": " ", "scopes": ["ingest"]}, {"name": ["required"]}),
        ({"name": "x" * 101, "scopes": ["ingest"]}, {"name": ["too long"]}),
        ({"name": "k", "scopes": []}, {"scopes": ["required"]}),
        ({"name": "k", "scopes": ["ingest", "root"]}, {"scopes": ["unknown: root"]}),
        (
            {"name": "k", "scopes": ["ingest"], "expires_at": "past"},
            {"expires_at": ["in the past"]},
        ),
    ],
)
def test_invalid_input_names_the_field_and_writes_nothing(alpha, kwargs, fields):
    if kwargs.get("expires_at") == "past":
        kwargs["expires_at"] = timezone.now() - timedelta(minutes=1)
    with tenant_context(alpha):
        with pytest.raises(ApplicationError) as raised:
            api_key_create(**kwargs)
        assert raised.value.fields == fields
        assert raised.value.status_code == 400
        assert ApiKey.objects.count() == 0
        assert AuditEvent.objects.count() == 0


def test_keys_cannot_be_created_in_the_public_schema(db):
    with pytest.raises(ApplicationError) as raised:
        api_key_create(name="k", scopes=["ingest"])

    assert raised.value.code == "no_store"
    assert AuditEvent.objects.filter(action="api_key.created").count() == 0


def test_revoke_is_audited_once_and_a_second_revoke_is_409(alpha):
    user = UserFactory()
    api_key, _ = api_key_for(alpha, name="Old")

    with tenant_context(alpha):
        api_key_revoke(api_key=api_key, acting_user=user)
        with pytest.raises(ApplicationError) as raised:
            api_key_revoke(api_key=api_key, acting_user=user)
        revoked = ApiKey.objects.get(pk=api_key.pk)
        events = list(AuditEvent.objects.filter(action="api_key.revoked"))

    assert (raised.value.status_code, raised.value.code) == (409, "already_revoked")
    assert revoked.status == "revoked"
    assert len(events) == 1
    assert events[0].details == {"name": "Old", "prefix": api_key.prefix}
    assert events[0].actor_user_id == user.pk
