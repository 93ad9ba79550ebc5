"""What tenancy announces; other apps subscribe in their `AppConfig.ready()`.

- `store_ready(tenant=...)`: sent inside the store's schema once the store exists (after the
  commit that created it) and again for every store by `setup_platform`. Receivers create the
  store's own rows they need (the recommendations app: the nightly training schedule), and must
  be idempotent.
"""

from __future__ import annotations

from django.dispatch import Signal

store_ready = Signal()
