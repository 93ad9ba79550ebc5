"""What the catalog announces; other apps subscribe in their `AppConfig.ready()`.

- `items_changed(schema_name=...)`: after commit, items of the store were created, changed or
  hidden (the recommendations app reloads its item filters).

A shopper's erasure and export go through the registry of `apps.core.erasure`.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.dispatch import Signal

items_changed = Signal()


def items_changed_on_commit() -> None:
    """Announce `items_changed` for the connection's store once the transaction commits. A
    failing receiver is logged (the items are committed; caches catch up on their TTL)."""
    schema_name = connection.schema_name
    transaction.on_commit(
        lambda: items_changed.send(sender=None, schema_name=schema_name), robust=True
    )
