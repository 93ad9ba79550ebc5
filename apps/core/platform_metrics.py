"""Platform health for Prometheus, read when /metrics is scraped: Celery queue lengths, whether
Redis and PostgreSQL answer, and counters of failures that happen in workers.

Workers are not scraped (they serve no HTTP), so what they count goes into one Redis hash
(`platform_event_count`) and any web pod reports it. Labels stay bounded: an event name from
PLATFORM_EVENTS, a queue name from the settings; never a store (per-store figures come from
the platform's own analytics).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from functools import cache

import redis
from django.conf import settings
from django.db import connection
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from apps.core.cache import redis_client, tenant_key

logger = logging.getLogger(__name__)

PLATFORM_EVENTS = frozenset({"training_failed", "webhook_attempt_failed"})


def _events_key() -> str:
    return tenant_key("metrics", "events", schema_name=settings.PUBLIC_SCHEMA_NAME)


def platform_event_count(event: str) -> None:
    """Count one `event` (one of PLATFORM_EVENTS) for the platform. Never raises: a metric
    must not fail the work it counts."""
    if event not in PLATFORM_EVENTS:
        raise ValueError(f"unknown platform event: {event}")
    with contextlib.suppress(redis.RedisError):
        redis_client().hincrby(_events_key(), event, 1)


@cache
def _broker() -> redis.Redis:
    return redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_connect_timeout=0.5, socket_timeout=0.5
    )


def _queue_names() -> list[str]:
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    return sorted(routed | {settings.CELERY_TASK_DEFAULT_QUEUE})


class PlatformCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        redis_up = GaugeMetricFamily("shelfsense_redis_up", "1 if Redis answered the scrape.")
        events = CounterMetricFamily(
            "shelfsense_platform_events",
            "Failures counted by any process (workers included), by event.",
            labels=["event"],
        )
        try:
            counts = redis_client().hgetall(_events_key())
            redis_up.add_metric([], 1)
            for event in sorted(PLATFORM_EVENTS):
                events.add_metric([event], int(counts.get(event.encode(), 0)))
        except redis.RedisError:
            redis_up.add_metric([], 0)
        yield redis_up
        yield events

        queues = GaugeMetricFamily(
            "shelfsense_celery_queue_length",
            "Messages waiting in a Celery queue.",
            labels=["queue"],
        )
        with contextlib.suppress(redis.RedisError):
            pipe = _broker().pipeline(transaction=False)
            names = _queue_names()
            for name in names:
                pipe.llen(name)
            for name, length in zip(names, pipe.execute(), strict=True):
                queues.add_metric([name], length)
        yield queues

        postgres_up = GaugeMetricFamily(
            "shelfsense_postgres_up", "1 if PostgreSQL answered the scrape."
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            postgres_up.add_metric([], 1)
        except Exception:
            logger.warning("metrics: PostgreSQL did not answer", exc_info=True)
            postgres_up.add_metric([], 0)
        yield postgres_up


PLATFORM_REGISTRY = CollectorRegistry(auto_describe=False)
PLATFORM_REGISTRY.register(PlatformCollector())
