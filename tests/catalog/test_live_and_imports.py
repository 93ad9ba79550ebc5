"""Live counters after commit, pushed to the store's group; file imports through the same
validation and idempotency."""

import json
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.catalog import live
from apps.catalog.models import Event, Item
from apps.catalog.selectors import event_counters
from apps.catalog.services import events_ingest
from apps.core.live import store_group
from tests.factories import event_payload

pytestmark = pytest.mark.django_db


def test_committed_batch_increments_counters_and_pushes_them_to_the_store_group(
    alpha, beta, django_capture_on_commit_callbacks
):
    layer = get_channel_layer()
    alpha_channel = async_to_sync(layer.new_channel)()
    beta_channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(store_group(alpha.schema_name), alpha_channel)
    async_to_sync(layer.group_add)(store_group(beta.schema_name), beta_channel)
    rows = [
        event_payload(event_id="1"),
        event_payload(event_id="2"),
        event_payload(event_id="3", type="purchase"),
        event_payload(event_id="1"),
    ]

    with tenant_context(alpha):
        with django_capture_on_commit_callbacks(execute=True):
            events_ingest(rows=rows)
        live.event_counters_flush()
        counters = event_counters()
    with tenant_context(beta):
        beta_counters = event_counters()

    message = async_to_sync(layer.receive)(alpha_channel)
    assert counters == {"view": 2, "purchase": 1}
    assert beta_counters == {}
    assert message["type"] == "store.event"
    assert message["payload"]["type"] == "counters"
    assert message["payload"]["events_today"] == {"view": 2, "purchase": 1}

    async def nothing_for_beta():
        import asyncio

        try:
            await asyncio.wait_for(layer.receive(beta_channel), timeout=0.3)
        except TimeoutError:
            return True
        return False

    assert async_to_sync(nothing_for_beta)()


def test_a_history_loaded_today_is_not_counted_as_todays_events(
    alpha, django_capture_on_commit_callbacks
):
    last_week = (timezone.now() - timedelta(days=7)).isoformat()
    history = [event_payload(event_id=f"old-{n}", timestamp=last_week) for n in range(50)]

    with tenant_context(alpha):
        with django_capture_on_commit_callbacks(execute=True):
            loaded = events_ingest(rows=[*history, event_payload(event_id="now-1")])
        counters = event_counters()

    assert loaded.accepted == 51
    assert counters == {"view": 1}


def test_counters_are_not_touched_when_the_transaction_rolls_back(alpha):
    from django.db import transaction

    with tenant_context(alpha):
        try:
            with transaction.atomic():
                events_ingest(rows=[event_payload()])
                raise RuntimeError("abort")
        except RuntimeError:
            pass
        assert Event.objects.count() == 0
        assert event_counters() == {}


def test_import_events_from_json_lines_is_idempotent(alpha, tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    lines = [
        json.dumps(event_payload(event_id="j1")),
        json.dumps(event_payload(event_id=None, user_id="s-2")),
        "{not json",
        json.dumps(event_payload(event_id="j3", type="wink")),
    ]
    path.write_text("\n".join(lines) + "\n")

    call_command("import_events", "--tenant", "alpha", str(path))
    first = capsys.readouterr().out
    call_command("import_events", "--tenant", "alpha", str(path))
    second = capsys.readouterr().out

    assert "4 rows in" in first
    assert "2 stored, 0 duplicates, 2 errors" in first
    assert "line 3: row: Malformed JSON" in first
    assert "line 4: type: Must be one of" in first
    assert "0 stored, 2 duplicates, 2 errors" in second
    with tenant_context(alpha):
        assert sorted(Event.objects.values_list("user_id", flat=True)) == ["s-2", "shopper-1"]


def test_import_events_from_csv(alpha, tmp_path, capsys):
    path = tmp_path / "events.csv"
    ts = event_payload()["timestamp"]
    path.write_text(
        "event_id,user_id,item_id,type,value,timestamp\n"
        f"c1,s-1,alpha-only,rating,4,{ts}\n"
        f"c2,s-1,alpha-only,rating,nine,{ts}\n"
    )

    call_command("import_events", "--tenant", "alpha", str(path))

    out = capsys.readouterr().out
    assert "1 stored, 0 duplicates, 1 errors" in out
    assert "line 3: value: Must be a number." in out
    with tenant_context(alpha):
        assert list(Event.objects.values_list("event_id", "value")) == [("c1", 4.0)]


def test_import_items_from_csv_upserts(alpha, tmp_path, capsys):
    path = tmp_path / "items.csv"
    path.write_text(
        "item_id,title,categories,price,in_stock,attributes\n"
        'm1,Mug,kitchen|mugs,4.50,no,"{""colour"": ""blue""}"\n'
        "alpha-only,Renamed,,,yes,\n"
        "m2,Bad,,-1,,\n"
    )

    call_command("import_items", "--tenant", "alpha", str(path))

    out = capsys.readouterr().out
    assert "3 rows in" in out
    assert "1 created, 1 updated, 1 errors" in out
    assert "line 4: price: Must be 0 or more." in out
    with tenant_context(alpha):
        mug = Item.objects.get(item_id="m1")
        assert Item.objects.get(item_id="alpha-only").title == "Renamed"
    assert (mug.categories, str(mug.price), mug.in_stock, mug.attributes) == (
        ["kitchen", "mugs"],
        "4.50",
        False,
        {"colour": "blue"},
    )


def test_import_refuses_an_unknown_store(tmp_path):
    from django.core.management.base import CommandError

    path = tmp_path / "e.jsonl"
    path.write_text("")

    with pytest.raises(CommandError, match=r"No store with slug 'nope'\."):
        call_command("import_events", "--tenant", "nope", str(path))
