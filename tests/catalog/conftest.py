import pytest

from tests.conftest import _clear_test_redis_keys
from tests.factories import api_key_for


@pytest.fixture
def api(store_client):
    """`api(tenant, scopes=("ingest",))` → a test client on the store's host with a new key."""

    def make(tenant, scopes=("ingest",)):
        _, key = api_key_for(tenant, scopes=scopes)
        return store_client(tenant, HTTP_AUTHORIZATION=f"Bearer {key}")

    return make


@pytest.fixture(autouse=True)
def _fresh_redis():
    """Redis is not rolled back with the test transaction: counters and cached lists of one
    test must not reach the next."""
    _clear_test_redis_keys()
    yield
    _clear_test_redis_keys()
