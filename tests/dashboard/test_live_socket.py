"""/ws/dashboard/: members only (4403 otherwise), counters of one store never reach another,
notifications reach only their recipients."""

import json

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from apps.core.live import store_group
from apps.core.websockets import CLOSE_FORBIDDEN
from apps.tenants.selectors import store_domain
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
