"""Trained model artifacts: where they live in Django's storage, and a bounded per-process LRU
of loaded models keyed by (store schema, version id), so a store's model is read from disk
once per process and never handed to another store."""

from __future__ import annotations

import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from ml.model import RecommenderModel


def artifact_name(schema_name: str, number: int) -> str:
    """Storage name of a version's folder: one folder per store, one sub-folder per version."""
    return f"models/{schema_name}/{number}"


def artifact_dir(name: str) -> Path:
    """Local folder of an artifact. Only file-system storages are supported for now: models
    are memory-mapped-size numpy files read at load time."""
    try:
        return Path(default_storage.path(name))
    except NotImplementedError as exc:  # e.g. S3: not supported yet
        raise RuntimeError("Model artifacts need a file-system default storage.") from exc


def artifact_save(model: RecommenderModel, *, schema_name: str, number: int) -> str:
    name = artifact_name(schema_name, number)
    folder = artifact_dir(name)
    if folder.exists():
        shutil.rmtree(folder)
    model.save(folder)
    return name


def artifact_delete(name: str) -> None:
    if name:
        shutil.rmtree(artifact_dir(name), ignore_errors=True)


@dataclass
class LoadedModel:
    """A loaded model plus lists derived from it once (full trending / popularity orders)."""

    model: RecommenderModel
    _orders: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def order(self, kind: str) -> list[tuple[str, float]]:
        """Every item with events, best first, by `trending` or `popular`."""
        cached = self._orders.get(kind)
        if cached is None:
            with self._lock:
                cached = self._orders.get(kind)
                if cached is None:
                    everything = self.model.n_items
                    recs = (
                        self.model.trending(everything)
                        if kind == "trending"
                        else self.model.popular(everything)
                    )
                    cached = self._orders[kind] = list(recs.items)
        return cached


class ModelStore:
    """LRU of loaded models. Loading happens outside the LRU lock, one load per key at a time."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._models: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, int], threading.Lock] = {}

    def get(self, schema_name: str, version_id: int, artifact: str) -> LoadedModel:
        """The loaded model of (store, version). Raises OSError / ValueError when the artifact
        is missing or unreadable (callers degrade to a fallback)."""
        key = (schema_name, version_id)
        with self._lock:
            loaded = self._models.get(key)
            if loaded is not None:
                self._models.move_to_end(key)
                return loaded
            load_lock = self._loading.setdefault(key, threading.Lock())
        with load_lock:
            with self._lock:
                loaded = self._models.get(key)
            if loaded is None:
                loaded = LoadedModel(RecommenderModel.load(artifact_dir(artifact)))
                with self._lock:
                    self._models[key] = loaded
                    self._models.move_to_end(key)
                    while len(self._models) > self.capacity:
                        self._models.popitem(last=False)
        with self._lock:
            self._loading.pop(key, None)
        return loaded

    def forget(self, schema_name: str | None = None) -> None:
        with self._lock:
            for key in [k for k in self._models if schema_name is None or k[0] == schema_name]:
                del self._models[key]

    def keys(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._models)


models = ModelStore(capacity=settings.RECS_MODEL_CACHE_SIZE)
