"""Structured logs (apps/core/log_context.py): each record carries the store and the request id;
the request id is the caller's X-Request-ID when sane, else a new one, and is echoed back.
Failures counted by workers reach /metrics through Redis (apps/core/platform_metrics.py)."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from django_tenants.utils import tenant_context

from apps.core.log_context import JsonFormatter, LogContextFilter, request_id_var
from apps.core.platform_metrics import platform_event_count


def _json_logger() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LogContextFilter())
    logger = logging.getLogger("tests.log_context")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


@pytest.mark.django_db
def test_a_record_carries_the_store_the_request_id_and_its_extra_fields(alpha):
    logger, stream = _json_logger()
    token = request_id_var.set("req-12345678")
    try:
        with tenant_context(alpha):
            logger.info("imported %d events", 3, extra={"batch": 7})
        logger.warning("on the operators' site")
    finally:
        request_id_var.reset(token)

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert {k: first[k] for k in ("level", "message", "store", "request_id", "batch")} == {
        "level": "INFO",
        "message": "imported 3 events",
        "store": "store_alpha",
        "request_id": "req-12345678",
        "batch": 7,
    }
    assert (second["store"], second["request_id"]) == ("", "req-12345678")


def test_the_request_id_is_the_callers_when_sane_and_echoed(client):
    kept = client.get("/healthz", HTTP_X_REQUEST_ID="trace-0123abcd")
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="no spaces; allowed")
    fresh = client.get("/healthz")

    assert kept["X-Request-ID"] == "trace-0123abcd"
    assert re.fullmatch(r"[0-9a-f]{32}", replaced["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", fresh["X-Request-ID"])
    assert fresh["X-Request-ID"] != replaced["X-Request-ID"]
    assert request_id_var.get() == ""  # reset after the request


@pytest.mark.django_db
def test_failures_counted_anywhere_are_on_the_metrics_page(client, settings):
    settings.METRICS_TOKEN = "events-token"

    def training_failures() -> int:
        body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer events-token").content.decode()
        match = re.search(
            r'^shelfsense_platform_events_total\{event="training_failed"\} (\S+)$',
            body,
            flags=re.MULTILINE,
        )
        return int(float(match.group(1)))

    before = training_failures()
    platform_event_count("training_failed")
    platform_event_count("training_failed")

    assert training_failures() == before + 2
    with pytest.raises(ValueError, match="unknown platform event"):
        platform_event_count("store_alpha_failed")
