"""HTTP and websockets resolve a store from the Host header with one function (issue 13:
uppercase and trailing-dot hosts found the store over websockets, not over HTTP), and a
store's socket refuses pages of another origin."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from apps.core.websockets import CLOSE_FORBIDDEN, CLOSE_STORE_NOT_FOUND
from apps.tenants.selectors import hostname_normalize
from config.asgi import application
from tests.factories import MembershipFactory, UserFactory, api_key_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("websocket_db")]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("alpha.localhost", "alpha.localhost"),
        ("ALPHA.LocalHost", "alpha.localhost"),
        ("alpha.localhost.", "alpha.localhost"),
        ("Alpha.Localhost.:8000", "alpha.localhost"),
        ("www.alpha.localhost", "alpha.localhost"),
        ("alpha.localhost..", ""),
        ("alpha.evil.test", ""),
        ("", ""),
    ],
)
def test_hostname_normalize(host, expected):
    assert hostname_normalize(host) == expected


def _socket_close_code(host: str, origin: str, cookie: bytes) -> dict:
    async def run():
        communicator = WebsocketCommunicator(
            application,
            "/ws/dashboard/",
            headers=[(b"host", host.encode()), (b"origin", origin.encode()), (b"cookie", cookie)],
        )
        connected, code = await communicator.connect()
        if not connected:  # refused before the handshake
            return False, {"type": "websocket.close", "code": code}
        output = await communicator.receive_output(timeout=5)
        await communicator.disconnect()
        return connected, output

    return async_to_sync(run)()


def _member_cookie(tenant) -> bytes:
    user = UserFactory()
    MembershipFactory(user=user, tenant=tenant, role="analyst")
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


@pytest.mark.parametrize("host", ["ALPHA.LOCALHOST", "alpha.localhost.", "Alpha.LocalHost.:8000"])
def test_http_and_websocket_find_the_same_store_for_a_host_spelt_differently(alpha, host):
    _, key = api_key_for(alpha, scopes=("ingest",))
    cookie = _member_cookie(alpha)

    http = Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {key}").get(
        "/api/v1/items/alpha-only"
    )
    connected, first = _socket_close_code(host, "http://alpha.localhost", cookie)

    assert (http.status_code, http.json()["item_id"]) == (200, "alpha-only")
    assert connected is True
    assert first["type"] == "websocket.send"
    assert '"store": "alpha"' in first["text"]


def test_http_and_websocket_both_refuse_a_host_of_no_store(alpha):
    cookie = _member_cookie(alpha)

    http = Client(HTTP_HOST="gamma.localhost").get("/api/v1/items/", HTTP_ACCEPT="application/json")
    _, ws = _socket_close_code("gamma.localhost", "http://gamma.localhost", cookie)

    assert http.status_code == 404
    assert ws == {"type": "websocket.close", "code": CLOSE_STORE_NOT_FOUND}


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        # Another store's page, or the platform's: allowed hosts, refused by the store.
        ("http://beta.localhost", {"type": "websocket.close", "code": CLOSE_FORBIDDEN}),
        ("http://localhost", {"type": "websocket.close", "code": CLOSE_FORBIDDEN}),
        ("http://alpha.localhost.evil.test", {"type": "websocket.close", "code": 1000}),
        ("null", {"type": "websocket.close", "code": 1000}),
    ],
)
def test_a_stores_socket_refuses_another_origin(alpha, beta, origin, expected):
    cookie = _member_cookie(alpha)

    _, output = _socket_close_code("alpha.localhost", origin, cookie)

    assert output == expected
