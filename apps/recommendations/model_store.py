"""Trained model artifacts: where they live in the "artifacts" storage (settings.STORAGES), the
local copy serving memory-maps, and a per-process LRU of loaded models keyed by (store schema,
version id), so a store's model is read once per process and never handed to another store. The
LRU is bounded by bytes (RECS_MODEL_CACHE_MB): each model counts its private memory
(`RecommenderModel.resident_bytes`: id dictionaries and what loading derives), not its arrays,
which are memory-mapped from the artifact and shared with every process on the machine.

An artifact is the folder `RecommenderModel.save` writes, stored under models/<schema>/<number>/.
On a file-system storage that folder is served in place. On a remote storage (S3) training uploads
each file and the manifest last, so an artifact without its manifest is incomplete and never
loaded; a process that serves it downloads it once into ARTIFACT_CACHE_DIR (to a temporary folder
renamed into place, so a half-downloaded copy is never read) and loads from there.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages

from ml.model import RecommenderModel

# Written last by RecommenderModel.save and uploaded last: its presence marks a complete artifact.
MANIFEST = "manifest.json"


def artifact_name(schema_name: str, number: int) -> str:
    """Storage name of a version's folder: one folder per store, one sub-folder per version."""
    return f"models/{schema_name}/{number}"


def artifact_belongs_to(name: str, schema_name: str) -> bool:
    """True when `name` is a folder under the store's own prefix (models/<schema>/...)."""
    parts = PurePosixPath(name).parts
    return len(parts) == 3 and parts[:2] == ("models", schema_name) and ".." not in parts


def artifact_storage() -> Storage:
    return storages["artifacts"]


def _local_path(storage: Storage, name: str) -> Path | None:
    """The storage's own path of `name` when it is a file system, else None (remote)."""
    try:
        return Path(storage.path(name))
    except NotImplementedError:
        return None


def artifact_cache_root() -> Path:
    return Path(settings.ARTIFACT_CACHE_DIR or Path(settings.MEDIA_ROOT) / "artifact-cache")


def _cache_path(name: str) -> Path:
    parts = PurePosixPath(name).parts
    if not parts or ".." in parts or PurePosixPath(name).is_absolute():
        raise ValueError(f"invalid artifact name {name!r}")
    return artifact_cache_root().joinpath(*parts)


def artifact_dir(name: str) -> Path:
    """Local folder of a complete artifact, to load with `RecommenderModel.load`. A file-system
    storage's own folder; for a remote storage the local cache, downloaded on first use. Raises
    FileNotFoundError when the artifact (or its manifest) is missing, OSError when the storage
    cannot be read."""
    storage = artifact_storage()
    local = _local_path(storage, name)
    if local is not None:
        return local
    cached = _cache_path(name)
    if not (cached / MANIFEST).exists():
        _download(storage, name, cached)
    return cached


def _remote_files(storage: Storage, folder: str) -> list[str]:
    """Every file under `folder`, as paths relative to it."""
    directories, files = storage.listdir(folder)
    found = list(files)
    for sub in directories:
        found += [f"{sub}/{path}" for path in _remote_files(storage, f"{folder}/{sub}")]
    return found


def _download(storage: Storage, name: str, target: Path) -> None:
    try:
        if not storage.exists(f"{name}/{MANIFEST}"):
            raise FileNotFoundError(f"artifact {name} is missing or incomplete (no {MANIFEST})")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
            for relative in _remote_files(storage, name):
                destination = Path(tmp, *PurePosixPath(relative).parts)
                destination.parent.mkdir(parents=True, exist_ok=True)
                with storage.open(f"{name}/{relative}", "rb") as remote:
                    s3_object = getattr(remote, "obj", None)
                    if s3_object is not None:
                        # S3: a parallel ranged download straight to disk, not a spooled copy.
                        s3_object.download_file(str(destination), Config=storage.transfer_config)
                    else:
                        with open(destination, "wb") as out:
                            shutil.copyfileobj(remote, out, 1024 * 1024)
            if not (Path(tmp) / MANIFEST).exists():
                raise FileNotFoundError(f"artifact {name} changed while downloading")
            if (target / MANIFEST).exists():  # another process finished first
                return
            if target.exists():  # a folder without its manifest: not a copy this code made
                shutil.rmtree(target, ignore_errors=True)
            try:
                Path(tmp).rename(target)
            except OSError:
                if not (target / MANIFEST).exists():  # not another process finishing first
                    raise
    except OSError:
        raise
    except Exception as exc:  # the storage's client errors (botocore): unreadable, like disk
        raise OSError(f"artifact {name} could not be downloaded: {exc}") from exc


def artifact_save(model: RecommenderModel, *, schema_name: str, number: int) -> str:
    """Write the model's artifact to the "artifacts" storage; returns its name. A file-system
    storage gets the folder written next to its place and renamed into it; a remote one gets
    the files uploaded, the manifest last."""
    name = artifact_name(schema_name, number)
    storage = artifact_storage()
    local = _local_path(storage, name)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=local.parent, prefix=f".{number}-"))
        try:
            model.save(staging)
            if local.exists():
                shutil.rmtree(local)
            staging.rename(local)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return name
    artifact_delete(name)  # an earlier, failed attempt at this version
    # Written on the cache's volume: sized for artifacts, unlike a container's /tmp.
    artifact_cache_root().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=artifact_cache_root(), prefix=".upload-") as tmp:
        model.save(tmp)
        files = sorted(
            path.relative_to(tmp).as_posix() for path in Path(tmp).rglob("*") if path.is_file()
        )
        for relative in sorted(files, key=lambda path: path == MANIFEST):
            key = f"{name}/{relative}"
            with open(Path(tmp, relative), "rb") as handle:
                saved = storage.save(key, File(handle, name=PurePosixPath(relative).name))
            if saved != key:
                raise RuntimeError(f"artifacts storage renamed {key} to {saved}; overwrite needed")
    return name


def artifact_delete(name: str) -> None:
    """Remove an artifact from the storage (manifest first, so no process starts loading a
    partial one) and from this machine's cache."""
    if not name:
        return
    storage = artifact_storage()
    local = _local_path(storage, name)
    if local is not None:
        shutil.rmtree(local, ignore_errors=True)
        return
    files = _remote_files(storage, name)
    for relative in sorted(files, key=lambda path: path != MANIFEST):
        storage.delete(f"{name}/{relative}")
    shutil.rmtree(_cache_path(name), ignore_errors=True)


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
    """LRU of loaded models within a byte budget. Loading happens outside the LRU lock, one load
    per key at a time. The most recently used model is always kept, even alone above the budget
    (evicting it would reload it on the next request)."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._models: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._sizes: dict[tuple[str, int], int] = {}
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
                if not artifact_belongs_to(artifact, schema_name):
                    raise ValueError(f"artifact {artifact!r} is not under {schema_name}'s prefix")
                loaded = LoadedModel(RecommenderModel.load(artifact_dir(artifact)))
                size = loaded.model.resident_bytes()
                with self._lock:
                    self._models[key] = loaded
                    self._sizes[key] = size
                    self._models.move_to_end(key)
                    while len(self._models) > 1 and self.resident_bytes() > self.budget_bytes:
                        evicted, _ = self._models.popitem(last=False)
                        self._sizes.pop(evicted, None)
        with self._lock:
            self._loading.pop(key, None)
        return loaded

    def resident_bytes(self) -> int:
        """Estimated private bytes of the cached models (call under the lock or for a report)."""
        return sum(self._sizes.get(key, 0) for key in self._models)

    def forget(self, schema_name: str | None = None) -> None:
        with self._lock:
            for key in [k for k in self._models if schema_name is None or k[0] == schema_name]:
                del self._models[key]
                self._sizes.pop(key, None)

    def keys(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._models)


models = ModelStore(budget_bytes=settings.RECS_MODEL_CACHE_MB * 1024 * 1024)
