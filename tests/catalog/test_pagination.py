"""Cursor pagination's bad input (apps.core.pagination): a 400 naming `cursor` or `page_size`,
never a 500 or a silently ignored parameter."""

from base64 import b64encode
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from tests.factories import EventFactory, ItemFactory

pytestmark = pytest.mark.django_db

ITEMS = "/api/v1/items/"
EVENTS = "/api/v1/users/s-1/events"


def _cursor(querystring: str) -> str:
    return b64encode(querystring.encode()).decode()


def _field_error(response, name: str) -> list[str]:
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"][name]


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        (ITEMS, "not base64 at all!"),
        (ITEMS, _cursor("p=abc")),
        (ITEMS, _cursor("p=")),
        (ITEMS, _cursor("p=" + "9" * 30)),
        (ITEMS, _cursor("o=-1")),
        (EVENTS, _cursor("p=abc")),
        (EVENTS, _cursor("p=2026-13-40 12:00:00")),
        (EVENTS, _cursor("p=0001-01-01 00:00:00+15:00")),
    ],
)
def test_a_cursor_this_api_did_not_return_is_400_naming_it(alpha, api, path, cursor):
    response = api(alpha, scopes=("recommend",)).get(path, {"cursor": cursor})

    assert _field_error(response, "cursor")


def test_a_time_cursor_in_any_offset_is_read_as_its_utc_instant(alpha, api):
    now = timezone.now().replace(microsecond=0)
    with tenant_context(alpha):
        for hours, event_id in [(1, "new"), (2, "mid"), (3, "old")]:
            EventFactory(event_id=event_id, user_id="s-1", timestamp=now - timedelta(hours=hours))
    # Ninety minutes ago, written with an offset PostgreSQL does not accept (+23:59).
    position = (now - timedelta(minutes=90)).astimezone(timezone.get_fixed_timezone(23 * 60 + 59))
    cursor = _cursor(urlencode({"p": position.isoformat(sep=" ")}))

    response = api(alpha, scopes=("recommend",)).get(EVENTS, {"cursor": cursor})

    assert response.status_code == 200, response.content
    assert [e["event_id"] for e in response.json()["results"]] == ["mid", "old"]


@pytest.mark.parametrize("page_size", ["-5", "0", "abc", "1001", "2.5", "\u0662"])
def test_a_page_size_out_of_range_is_400_naming_it(alpha, api, page_size):
    response = api(alpha, scopes=("recommend",)).get(ITEMS, {"page_size": page_size})

    assert _field_error(response, "page_size") == ["Must be an integer from 1 to 1000."]


def test_a_page_size_in_range_pages_through_everything(alpha, api):
    with tenant_context(alpha):
        for n in range(5):
            ItemFactory(item_id=f"i-{n}")
    client = api(alpha, scopes=("recommend",))

    seen, url = [], f"{ITEMS}?page_size=2"
    while url:
        page = client.get(url).json()
        seen += [item["item_id"] for item in page["results"]]
        url = page["next"]

    assert len(seen) == len(set(seen))
    assert {f"i-{n}" for n in range(5)} <= set(seen)
