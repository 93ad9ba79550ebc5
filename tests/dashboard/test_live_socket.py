"""/ws/dashboard/: members only (4403 otherwise, also once a member is removed or the store
suspended), counters of one store never reach another, notifications reach only their
recipients."""

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from apps.core.live import store_group
from apps.core.websockets import CLOSE_FORBIDDEN
from apps.tenants.selectors import store_domain
from apps.tenants.services import tenant_suspend
from config.asgi import application
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("websocket_db")]


def _cookie(client, user) -> list[tuple[bytes, bytes]]:
    client.force_login(user)
    value = client.cookies[settings.SESSION_COOKIE_NAME].value
    return [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={value}".encode())]


def _headers(slug: str, extra=()):
    host = store_domain(slug)
    return [(b"host", host.encode()), (b"origin", f"http://{host}".encode()), *extra]


async def _open(slug: str, cookie):
    communicator = WebsocketCommunicator(
        application, "/ws/dashboard/", headers=_headers(slug, cookie)
    )
    connected, _ = await communicator.connect()
    assert connected
    snapshot = await communicator.receive_json_from(timeout=5)
    counters = await communicator.receive_json_from(timeout=5)
    return communicator, snapshot, counters


async def _push(slug_schema: str, payload: dict):
    await get_channel_layer().group_send(
        store_group(slug_schema), {"type": "store.event", "payload": payload}
    )


def test_counters_of_one_store_never_reach_another(alpha, beta, client):
    user = UserFactory()
    MembershipFactory(user=user, tenant=alpha, role="analyst")
    cookie = _cookie(client, user)

    async def run():
        socket, snapshot, counters = await _open("alpha", cookie)
        await _push(beta.schema_name, {"type": "counters", "events_today": {"view": 99}})
        leaked = await socket.receive_nothing(timeout=0.5)
        await _push(alpha.schema_name, {"type": "counters", "events_today": {"view": 3}})
        own = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return snapshot, counters, leaked, own

    snapshot, counters, leaked, own = async_to_sync(run)()

    assert snapshot["type"] == "snapshot"
    assert snapshot["store"] == "alpha"
    assert counters["type"] == "counters"
    assert leaked is True
    assert own == {"type": "counters", "events_today": {"view": 3}}


def test_notification_reaches_only_its_recipient(alpha, client):
    first, second = UserFactory(), UserFactory()
    MembershipFactory(user=first, tenant=alpha, role="owner")
    MembershipFactory(user=second, tenant=alpha, role="developer")
    first_cookie = _cookie(client, first)
    from django.test import Client

    second_cookie = _cookie(Client(), second)
    payload = {
        "type": "notification",
        "kind": "training.finished",
        "title": "Model v2 trained",
        "recipients": {str(first.pk): 41},
    }

    async def run():
        one, *_ = await _open("alpha", first_cookie)
        two, *_ = await _open("alpha", second_cookie)
        await _push(alpha.schema_name, payload)
        received = await one.receive_json_from(timeout=5)
        nothing = await two.receive_nothing(timeout=0.5)
        await one.disconnect()
        await two.disconnect()
        return received, nothing

    received, nothing = async_to_sync(run)()

    assert received == {
        "type": "notification",
        "kind": "training.finished",
        "title": "Model v2 trained",
        "id": 41,
    }
    assert nothing is True


@pytest.mark.parametrize("role", [None, "beta-owner"])
def test_non_members_are_closed_with_4403(alpha, beta, client, role):
    cookie = []
    if role:
        user = UserFactory()
        MembershipFactory(user=user, tenant=beta, role="owner")
        cookie = _cookie(client, user)

    async def run():
        communicator = WebsocketCommunicator(
            application, "/ws/dashboard/", headers=_headers("alpha", cookie)
        )
        await communicator.connect()
        output = await communicator.receive_output(timeout=5)
        await communicator.disconnect()
        return output

    output = async_to_sync(run)()

    assert output == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}
    assert json.dumps(output).count("alpha-only") == 0


def test_an_idle_socket_still_receives_pushes():
    """The store group's messages reach a dashboard that had nothing to receive for a while."""
    import asyncio

    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    async def run():
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        channel = await layer.new_channel()

        async def push_later():
            await asyncio.sleep(6.5)
            await layer.send(channel, {"type": "store.event", "payload": {"type": "ping"}})

        pusher = asyncio.ensure_future(push_later())
        try:
            return await asyncio.wait_for(layer.receive(channel), timeout=15)
        finally:
            pusher.cancel()
            await layer.close_pools()

    assert async_to_sync(run)() == {"type": "store.event", "payload": {"type": "ping"}}


@pytest.mark.parametrize(
    "frame",
    [
        {"text_data": "not json"},
        {"text_data": "{" * 10_000},
        {"bytes_data": b"\x00\xff"},
        {"text_data": '{"type": "store.event", "payload": {"type": "counters"}}'},
    ],
)
def test_anything_a_client_sends_is_ignored_and_the_socket_stays_live(alpha, client, frame):
    # The socket is push-only; a frame that is not JSON, or bytes, used to raise in the
    # consumer (a traceback in the server log, the socket dropped).
    user = UserFactory()
    MembershipFactory(user=user, tenant=alpha, role="analyst")
    cookie = _cookie(client, user)

    async def run():
        socket, _, _ = await _open("alpha", cookie)
        await socket.send_to(**frame)
        answered_nothing = await socket.receive_nothing(timeout=0.3)
        await _push(alpha.schema_name, {"type": "counters", "events_today": {"view": 1}})
        still_live = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return answered_nothing, still_live

    answered_nothing, still_live = async_to_sync(run)()

    assert answered_nothing is True
    assert still_live == {"type": "counters", "events_today": {"view": 1}}


async def _closed_with(socket) -> dict:
    output = await socket.receive_output(timeout=5)
    await socket.disconnect()
    return output


def test_removed_member_socket_is_closed_others_stay_open(
    alpha, beta, member_client, django_capture_on_commit_callbacks
):
    # Given an owner and a member of alpha, the member also in beta, each with a socket open.
    owner_client, owner = member_client(alpha, "owner")
    member = UserFactory()
    membership = MembershipFactory(user=member, tenant=alpha, role="analyst")
    MembershipFactory(user=member, tenant=beta, role="analyst")
    owner_cookie = _cookie(owner_client, owner)
    from django.test import Client

    member_cookie = _cookie(Client(), member)

    def remove():
        with django_capture_on_commit_callbacks(execute=True):
            return owner_client.post(f"/team/members/{membership.pk}/remove/").status_code

    async def run():
        member_alpha, *_ = await _open("alpha", member_cookie)
        member_beta, *_ = await _open("beta", member_cookie)
        owner_alpha, *_ = await _open("alpha", owner_cookie)
        # When the owner removes the member.
        status = await sync_to_async(remove)()
        closed = await _closed_with(member_alpha)
        await _push(alpha.schema_name, {"type": "counters", "events_today": {"view": 2}})
        await _push(beta.schema_name, {"type": "counters", "events_today": {"view": 5}})
        owner_got = await owner_alpha.receive_json_from(timeout=5)
        beta_got = await member_beta.receive_json_from(timeout=5)
        await owner_alpha.disconnect()
        await member_beta.disconnect()
        return status, closed, owner_got, beta_got

    status, closed, owner_got, beta_got = async_to_sync(run)()

    # Then only the member's alpha socket is closed, with the code a refused connect gets.
    assert status == 302
    assert closed == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}
    assert owner_got == {"type": "counters", "events_today": {"view": 2}}
    assert beta_got == {"type": "counters", "events_today": {"view": 5}}


def test_a_refused_removal_closes_nothing(alpha, member_client, django_capture_on_commit_callbacks):
    # Given the only owner of alpha with a socket open.
    owner_client, owner = member_client(alpha, "owner")
    cookie = _cookie(owner_client, owner)

    def leave():
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            status = owner_client.post("/team/leave/").status_code
        return status, len(callbacks)

    async def run():
        socket, *_ = await _open("alpha", cookie)
        # When the last owner tries to leave (refused: 409).
        result = await sync_to_async(leave)()
        nothing = await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()
        return result, nothing

    (status, callbacks), nothing = async_to_sync(run)()

    assert (status, callbacks) == (409, 0)
    assert nothing is True


def test_suspending_a_store_closes_its_sockets_only(
    alpha, beta, client, django_capture_on_commit_callbacks
):
    # Given a member of alpha and beta with a socket open on each.
    user = UserFactory()
    MembershipFactory(user=user, tenant=alpha, role="owner")
    MembershipFactory(user=user, tenant=beta, role="owner")
    cookie = _cookie(client, user)

    def suspend():
        with django_capture_on_commit_callbacks(execute=True):
            tenant_suspend(tenant=alpha, reason="unpaid")

    async def run():
        on_alpha, *_ = await _open("alpha", cookie)
        on_beta, *_ = await _open("beta", cookie)
        # When alpha is suspended.
        await sync_to_async(suspend)()
        closed = await _closed_with(on_alpha)
        await _push(beta.schema_name, {"type": "counters", "events_today": {"view": 7}})
        beta_got = await on_beta.receive_json_from(timeout=5)
        await on_beta.disconnect()
        return closed, beta_got

    closed, beta_got = async_to_sync(run)()

    # Then alpha's socket is closed as a connect to a suspended store is; beta's stays live.
    assert closed == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}
    assert beta_got == {"type": "counters", "events_today": {"view": 7}}
