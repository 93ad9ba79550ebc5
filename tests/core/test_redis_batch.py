"""A request's Redis batch: commands queued by several parts go out in one round trip, and a
Redis failure reaches every part that queued something."""

import pytest
import redis

from apps.core.cache import redis_client, tenant_key
from apps.core.redis_batch import RedisBatch, request_batch


@pytest.fixture
def keys():
    names = [tenant_key("batch-test", n, schema_name="public") for n in range(3)]
    redis_client().delete(*names)
    yield names
    redis_client().delete(*names)


def test_queued_commands_go_out_in_one_round_trip_in_order(keys, monkeypatch):
    redis_client().set(keys[0], b"cached")
    batch = RedisBatch()
    gate = batch.add(("INCR", keys[1]), ("SET", keys[2], 1, "NX"))
    read = batch.add(("MGET", keys[0], keys[2]))
    RedisBatch().add(("PING",)).result()  # the thread's connection made (its handshake sent)
    writes = []
    send = redis.Connection.send_packed_command
    monkeypatch.setattr(
        redis.Connection,
        "send_packed_command",
        lambda self, *a, **k: writes.append(1) or send(self, *a, **k),
    )

    gate_values = gate.result()
    read_values = read.result()

    assert writes == [1]
    assert gate_values == [1, b"OK"]
    assert read_values == [[b"cached", b"1"]]


def test_an_error_reply_fails_the_batch_and_leaves_no_reply_behind(keys):
    redis_client().set(keys[0], b"not a number")
    batch = RedisBatch()
    failing = batch.add(("INCR", keys[0]))
    after = batch.add(("GET", keys[0]))

    with pytest.raises(redis.ResponseError):
        failing.result()
    with pytest.raises(redis.ResponseError):
        after.result()
    # The connection that still held the GET's reply was dropped: the next batch reads its own.
    assert RedisBatch().add(("GET", keys[0])).result() == [b"not a number"]


def test_a_redis_failure_reaches_every_pending_part(settings):
    redis_client.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    try:
        batch = RedisBatch()
        first = batch.add(("GET", "a"))
        second = batch.add(("GET", "b"))
        with pytest.raises(redis.ConnectionError):
            first.result()
        with pytest.raises(redis.ConnectionError):
            second.result()
    finally:
        redis_client.cache_clear()


def test_each_request_has_its_own_batch(rf):
    one, other = rf.get("/"), rf.get("/")

    assert request_batch(one) is request_batch(one)
    assert request_batch(one) is not request_batch(other)


def test_a_connection_redis_closed_while_idle_is_replaced_before_the_next_batch(keys):
    # given this thread's connection, closed by Redis while idle (as a restart or an idle
    # timeout would)
    redis_client().set(keys[0], b"v")
    (client_id,) = RedisBatch().add(("CLIENT", "ID")).result()
    redis_client().client_kill_filter(_id=client_id)

    # when the next batch goes out
    values = RedisBatch().add(("GET", keys[0])).result()

    # then it is answered, on a new connection
    assert values == [b"v"]
    assert RedisBatch().add(("CLIENT", "ID")).result() != [client_id]
