"""The live publisher: coalesced pushes leave on the process's one flusher thread, the latest
payload of a store and key winning; a direct push reaches the store's group at once."""

import asyncio
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from apps.core import flusher, live


def _receive(layer, channel: str, timeout: float):
    async def receive():
        try:
            return await asyncio.wait_for(layer.receive(channel), timeout=timeout)
        except TimeoutError:
            return None

    return async_to_sync(receive)()


def test_coalesced_pushes_reach_the_group_from_the_flusher_thread_latest_first():
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(live.store_group("store_livetest"), channel)
    try:
        for n in range(3):
            live.store_push_coalesced(
                schema_name="store_livetest", payload={"type": "counters", "n": n}
            )

        # no explicit flush: the shared flusher thread sends it
        first = _receive(layer, channel, timeout=5)
        second = _receive(layer, channel, timeout=1)
    finally:
        async_to_sync(layer.group_discard)(live.store_group("store_livetest"), channel)

    assert first == {"type": "store.event", "payload": {"type": "counters", "n": 2}}
    assert second is None
    assert [t.name for t in threading.enumerate()].count("flusher") == 1
    assert {f.name for f in flusher._thread.flushers} >= {
        "live-push",
        "impression-flush",
        "api-usage-flush",
    }


def test_a_direct_push_reaches_the_stores_group():
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(live.store_group("store_livetest"), channel)
    try:
        live.store_push(schema_name="store_livetest", payload={"type": "training.progress"})
        message = _receive(layer, channel, timeout=5)
    finally:
        async_to_sync(layer.group_discard)(live.store_group("store_livetest"), channel)

    assert message == {"type": "store.event", "payload": {"type": "training.progress"}}
