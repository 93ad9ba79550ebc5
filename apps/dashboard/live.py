"""Pushes to a store's live dashboard sockets (the group of `consumers.store_group`)."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction

from apps.dashboard.consumers import store_group

logger = logging.getLogger(__name__)


def store_push(*, schema_name: str, payload: dict[str, Any]) -> None:
    """Send `payload` to every socket of the store now. A Channels/Redis outage loses the live
    update only (pages still show the stored state), so it is logged, not raised."""
    layer = get_channel_layer()
    try:
        async_to_sync(layer.group_send)(
            store_group(schema_name), {"type": "store.event", "payload": payload}
        )
    except Exception:
        logger.warning("live push failed", exc_info=True, extra={"schema": schema_name})


def store_push_on_commit(payload: dict[str, Any]) -> None:
    """Push to the connection's store once the current transaction commits."""
    schema_name = connection.schema_name
    transaction.on_commit(lambda: store_push(schema_name=schema_name, payload=payload))
