"""Invitations and memberships: each change audited exactly once, in the store's trail;
denied changes write nothing; the last owner stays."""

import re

import pytest
from django.core import mail
from django.core.management import call_command
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.core.errors import ApplicationError
from apps.users.models import Invitation, Membership
from apps.users.services import (
    invitation_accept,
    invitation_decline,
    invitation_from_token,
    membership_change_role,
    membership_invite,
    membership_remove,
    membership_transfer_ownership,
)
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _events(tenant, action):
    with tenant_context(tenant):
        return list(AuditEvent.objects.filter(action=action).order_by("id"))


def _token_from_mail() -> str:
    return re.search(r"/invitations/([^/\s]+)/", mail.outbox[-1].body).group(1)


def test_invite_then_accept_is_audited_once_each(alpha, django_capture_on_commit_callbacks):
    owner = MembershipFactory(tenant=alpha, role="owner").user
    invitee = UserFactory(email="dana@x.test")

    with django_capture_on_commit_callbacks(execute=True):
        membership_invite(tenant=alpha, email="Dana@X.test", role="developer", acting_user=owner)
    invitation = invitation_from_token(_token_from_mail())
    membership = invitation_accept(invitation=invitation, acting_user=invitee)

    assert mail.outbox[-1].to == ["dana@x.test"]
    assert (membership.role, membership.user) == ("developer", invitee)
    invited = _events(alpha, "member.invited")
    joined = _events(alpha, "member.joined")
    assert len(invited) == 1
    assert invited[0].actor_user_id == owner.pk
    assert invited[0].details["email"] == "dana@x.test"
    assert invited[0].details["role"] == "developer"
    assert len(joined) == 1
    assert joined[0].details == {
        "email": "dana@x.test",
        "role": "developer",
        "invitation": invitation.pk,
    }


def test_an_invitation_for_someone_else_is_refused(alpha):
    invitation = membership_invite(tenant=alpha, email="a@x.test", role="analyst")
    intruder = UserFactory(email="b@x.test")

    with pytest.raises(ApplicationError) as raised:
        invitation_accept(invitation=invitation, acting_user=intruder)

    assert (raised.value.status_code, raised.value.code) == (403, "wrong_account")
    assert not Membership.objects.filter(user=intruder).exists()
    assert _events(alpha, "member.joined") == []


def test_a_tampered_link_is_refused():
    with pytest.raises(ApplicationError) as raised:
        invitation_from_token("not-a-token")

    assert raised.value.code == "invitation_invalid"


def test_decline_is_audited_and_closes_the_invitation(alpha):
    invitation = membership_invite(tenant=alpha, email="c@x.test", role="analyst")

    invitation_decline(invitation=invitation)

    invitation.refresh_from_db()
    assert invitation.status == "declined"
    assert len(_events(alpha, "member.invitation_declined")) == 1
    with pytest.raises(ApplicationError) as raised:
        invitation_accept(invitation=invitation, acting_user=UserFactory(email="c@x.test"))
    assert raised.value.code == "invitation_closed"


def test_an_analyst_cannot_invite_and_nothing_is_written(alpha):
    analyst = MembershipFactory(tenant=alpha, role="analyst").user

    with pytest.raises(ApplicationError) as raised:
        membership_invite(tenant=alpha, email="x@x.test", role="analyst", acting_user=analyst)

    assert raised.value.status_code == 403
    assert Invitation.objects.count() == 0
    assert _events(alpha, "member.invited") == []


@pytest.mark.parametrize(
    ("role", "field"), [("owner", "owner cannot be invited"), ("boss", "invalid choice")]
)
def test_bad_roles_name_the_field(alpha, role, field):
    with pytest.raises(ApplicationError) as raised:
        membership_invite(tenant=alpha, email="x@x.test", role=role)

    assert raised.value.fields == {"role": [field]}
    assert Invitation.objects.count() == 0


def test_role_change_and_removal_are_audited_with_before_and_after(alpha):
    owner = MembershipFactory(tenant=alpha, role="owner").user
    member = MembershipFactory(tenant=alpha, role="analyst", user=UserFactory(email="m@x.test"))

    membership_change_role(membership=member, role="developer", acting_user=owner)
    membership_remove(membership=member, acting_user=owner)

    changed = _events(alpha, "member.role_changed")
    removed = _events(alpha, "member.removed")
    assert [e.details for e in changed] == [
        {"email": "m@x.test", "before": {"role": "analyst"}, "after": {"role": "developer"}}
    ]
    assert [e.details for e in removed] == [
        {"email": "m@x.test", "role": "developer", "left": False}
    ]
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_the_last_owner_can_neither_leave_nor_be_demoted(alpha):
    owner_membership = MembershipFactory(tenant=alpha, role="owner")
    owner = owner_membership.user

    with pytest.raises(ApplicationError) as leaving:
        membership_remove(membership=owner_membership, acting_user=owner)
    with pytest.raises(ApplicationError) as demoting:
        membership_change_role(membership=owner_membership, role="admin", acting_user=owner)

    assert (leaving.value.code, demoting.value.code) == ("last_owner", "last_owner")
    owner_membership.refresh_from_db()
    assert owner_membership.role == "owner"
    assert _events(alpha, "member.removed") == _events(alpha, "member.role_changed") == []


def test_an_admin_cannot_touch_an_owner(alpha):
    owner_membership = MembershipFactory(tenant=alpha, role="owner")
    MembershipFactory(tenant=alpha, role="owner")
    admin = MembershipFactory(tenant=alpha, role="admin").user

    with pytest.raises(ApplicationError) as raised:
        membership_change_role(membership=owner_membership, role="analyst", acting_user=admin)

    assert raised.value.status_code == 403
    owner_membership.refresh_from_db()
    assert owner_membership.role == "owner"


def test_transfer_ownership_swaps_roles_in_one_audited_event(alpha):
    owner = MembershipFactory(tenant=alpha, role="owner", user=UserFactory(email="o@x.test"))
    heir = MembershipFactory(tenant=alpha, role="developer", user=UserFactory(email="h@x.test"))

    membership_transfer_ownership(tenant=alpha, to_membership=heir, acting_user=owner.user)

    owner.refresh_from_db()
    heir.refresh_from_db()
    assert (owner.role, heir.role) == ("admin", "owner")
    events = _events(alpha, "member.ownership_transferred")
    assert [e.details for e in events] == [
        {
            "to": {"email": "h@x.test", "before": "developer", "after": "owner"},
            "from": {"email": "o@x.test", "before": "owner", "after": "admin"},
        }
    ]


def test_invite_member_command(alpha, capsys):
    call_command("invite_member", tenant="alpha", email="cli@x.test", role="admin")

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Invited cli@x.test to alpha as admin."
    assert lines[1].startswith("Link (expires ")
    assert "http://localhost/invitations/" in lines[1]
    assert _events(alpha, "member.invited")[0].actor_label == "command:invite_member"
