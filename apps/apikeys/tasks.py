"""Celery tasks of API keys; each runs in the schema it was sent from (tenant-schemas-celery)
and calls one service."""

from __future__ import annotations

from celery import shared_task

from apps.apikeys import services


@shared_task(name="apps.apikeys.tasks.api_keys_expiry_notify")
def api_keys_expiry_notify() -> int:
    """Run by beat daily in every store's schema; returns the number of keys notified."""
    return len(services.api_keys_expiry_notify())
