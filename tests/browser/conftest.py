"""The browser walk-through runs after every other test: it is the slowest, and signing in
through the real form leaves append-only `auth.login` rows in the public audit trail (a
database trigger refuses their deletion), which tests counting the public trail's sign-ins
would otherwise see."""

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
