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
    gate = batch.add(lambda pipe: (pipe.incr(keys[1]), pipe.set(keys[2], 1, nx=True)))
    read = batch.add(lambda pipe: pipe.mget([keys[0], keys[2]]))
    sent = []
    execute = redis.client.Pipeline.execute
    monkeypatch.setattr(
        redis.client.Pipeline, "execute", lambda self, *a, **k: sent.append(1) or execute(self)
    )

    gate_values = gate.result()
    read_values = read.result()

    assert sent == [1]
    assert gate_values == [1, True]
    assert read_values == [[b"cached", b"1"]]


def test_a_redis_failure_reaches_every_pending_part(settings):
    redis_client.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    try:
        batch = RedisBatch()
        first = batch.add(lambda pipe: pipe.get("a"))
        second = batch.add(lambda pipe: pipe.get("b"))
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
