"""Each store's host reaches only that store's schema: over HTTP and over websockets."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django_tenants.utils import tenant_context

from apps.catalog.models import Item
from apps.core.websockets import CLOSE_FORBIDDEN, CLOSE_STORE_NOT_FOUND
from apps.tenants.selectors import store_domain
from config.asgi import application
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("websocket_db")]


def _member_of(store_client, tenant):
    # Store pages need a member's session (apps.users.middleware).
    client = store_client(tenant)
    client.force_login(MembershipFactory(tenant=tenant).user)
    return client


def test_each_store_host_sees_only_its_own_row(alpha, beta, store_client):
    alpha_page = _member_of(store_client, alpha).get("/").content.decode()
    beta_page = _member_of(store_client, beta).get("/").content.decode()

    assert "Alpha only item" in alpha_page
    assert "Beta only item" not in alpha_page
    assert "Beta only item" in beta_page
    assert "Alpha only item" not in beta_page


def test_rows_live_in_separate_schemas(alpha, beta):
    with tenant_context(alpha):
        alpha_ids = list(Item.objects.values_list("item_id", flat=True))
    with tenant_context(beta):
        beta_ids = list(Item.objects.values_list("item_id", flat=True))

    assert alpha_ids == ["alpha-only"]
    assert beta_ids == ["beta-only"]


def test_unknown_host_is_404_page_and_json(client):
    page = client.get("/", HTTP_HOST="nowhere.localhost")
    api = client.get("/api/v1/items/", HTTP_HOST="nowhere.localhost")

    assert page.status_code == 404
    assert "No store is served at" in page.content.decode()
    assert api.status_code == 404
    assert api.json() == {
        "error": {
            "code": "store_not_found",
            "message": "No store is served at nowhere.localhost.",
            "fields": {},
        }
    }


def _session_cookie(client, user) -> str:
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def _connect(host: str, cookie: str = "") -> tuple[bool, int | None, dict | None]:
    """Open /ws/dashboard/ on `host`; returns (accepted, close code, first message)."""

    async def run():
        headers = [(b"host", host.encode()), (b"origin", f"http://{host}".encode())]
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        communicator = WebsocketCommunicator(application, "/ws/dashboard/", headers=headers)
        connected, _ = await communicator.connect()
        output = await communicator.receive_output(timeout=5)
        await communicator.disconnect()
        if output["type"] == "websocket.close":
            return connected, output["code"], None
        import json

        return connected, None, json.loads(output["text"])

    return async_to_sync(run)()


def test_websocket_member_gets_only_their_store_snapshot(alpha, beta, client):
    user = UserFactory()
    MembershipFactory(user=user, tenant=alpha)
    cookie = _session_cookie(client, user)

    _, close_code, snapshot = _connect(store_domain("alpha"), cookie)

    assert close_code is None
    assert snapshot == {
        "type": "snapshot",
        "store": "alpha",
        "items": 1,
        "recent_items": ["Alpha only item"],
    }


def test_websocket_refuses_a_member_of_another_store(alpha, beta, client):
    user = UserFactory()
    MembershipFactory(user=user, tenant=alpha)
    cookie = _session_cookie(client, user)

    _, close_code, snapshot = _connect(store_domain("beta"), cookie)

    assert close_code == CLOSE_FORBIDDEN
    assert snapshot is None


def test_websocket_refuses_anonymous_and_unknown_hosts(alpha):
    assert _connect(store_domain("alpha"))[1] == CLOSE_FORBIDDEN
    assert _connect("nowhere.localhost")[1] == CLOSE_STORE_NOT_FOUND
