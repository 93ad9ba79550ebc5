"""The per-process model cache: an LRU bounded by the models' private bytes."""

from __future__ import annotations

import pytest

from apps.recommendations.model_store import ModelStore
from ml.model.arrays_io import is_mapped

pytestmark = pytest.mark.django_db


def _get(cache: ModelStore, store, version):
    return cache.get(store.schema_name, version.pk, version.artifact_path)


def test_models_past_the_byte_budget_are_evicted_oldest_first(stores):
    sizes = {}
    for name in ("a", "b"):
        probe = ModelStore(budget_bytes=2**40)
        loaded = _get(probe, getattr(stores, name), getattr(stores, f"version_{name}"))
        sizes[name] = loaded.model.resident_bytes()
        assert probe.resident_bytes() == sizes[name]
        # what serving holds privately is far below the arrays it maps from the artifact
        arrays = loaded.model.arrays
        assert all(is_mapped(a) for a in arrays.values() if a.size)
        assert sizes[name] < sum(a.nbytes for a in arrays.values())

    # a budget for both keeps both
    roomy = ModelStore(budget_bytes=sizes["a"] + sizes["b"])
    _get(roomy, stores.a, stores.version_a)
    _get(roomy, stores.b, stores.version_b)
    assert roomy.keys() == [
        (stores.a.schema_name, stores.version_a.pk),
        (stores.b.schema_name, stores.version_b.pk),
    ]

    # one byte short: loading B evicts A, the least recently used
    tight = ModelStore(budget_bytes=sizes["a"] + sizes["b"] - 1)
    first = _get(tight, stores.a, stores.version_a)
    _get(tight, stores.b, stores.version_b)
    assert tight.keys() == [(stores.b.schema_name, stores.version_b.pk)]
    assert tight.resident_bytes() == sizes["b"]
    assert _get(tight, stores.a, stores.version_a) is not first  # loaded again


def test_a_model_above_the_whole_budget_is_still_kept_alone(stores):
    cache = ModelStore(budget_bytes=1)

    loaded = _get(cache, stores.a, stores.version_a)

    assert cache.keys() == [(stores.a.schema_name, stores.version_a.pk)]
    assert _get(cache, stores.a, stores.version_a) is loaded
