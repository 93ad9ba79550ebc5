"""The lists read from PostgreSQL when no model answers: a big store's slow read is shared by
its processes through Redis; a small store's stays per process (its first events show within
the minute)."""

from __future__ import annotations

import orjson
import pytest
from django_tenants.utils import tenant_context

from apps.core.cache import redis_client, tenant_key
from apps.recommendations.serving import fallbacks
from apps.recommendations.serving.state import _fallbacks

pytestmark = pytest.mark.django_db


def test_a_slow_list_is_shared_through_redis_and_a_fast_one_is_not(
    stores, monkeypatch, django_assert_num_queries
):
    schema = stores.a.schema_name
    key = tenant_key("fallback", "popular", schema_name=schema)
    other = tenant_key("fallback", "popular", schema_name=stores.b.schema_name)
    redis_client().delete(key, other)
    try:
        with tenant_context(stores.a):
            _fallbacks.clear()
            fast = fallbacks.db_list(schema, "popular")
            assert fast
            assert redis_client().get(key) is None

            # a read as slow as a big store's is shared...
            _fallbacks.clear()
            monkeypatch.setattr(fallbacks, "SHARED_AFTER_SECONDS", 0.0)
            slow = fallbacks.db_list(schema, "popular")
            assert orjson.loads(redis_client().get(key)) == [[i, n] for i, n in slow]

            # ...so another process (nothing in its memory) serves it without a query
            _fallbacks.clear()
            with django_assert_num_queries(0):
                assert fallbacks.db_list(schema, "popular") == slow
        # and under the store's own key only
        assert redis_client().get(other) is None
    finally:
        _fallbacks.clear()
        redis_client().delete(key, other)
