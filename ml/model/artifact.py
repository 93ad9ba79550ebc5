"""The trained recommender artifact: arrays, metadata and an optional LightGBM booster,
persisted as ``arrays.npz`` + ``manifest.json`` + ``ranker.txt`` without pickle. The arrays
are loaded as read-only memory maps (ml.model.arrays_io), shared by every process serving the
model; what loading builds on top of them (id dictionaries, normalised factors) is the model's
private memory, :meth:`RecommenderModel.resident_bytes`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp

from ml.candidates.als import normalized
from ml.candidates.popularity import TimeBins
from ml.data import IdIndex, UserItemTable
from ml.model.arrays_io import is_mapped, load_arrays, save_arrays
from ml.model.config import FORMAT_VERSION, STRATEGIES, ServingConfig
from ml.model.features import FEATURE_NAMES
from ml.model.fresh import FreshServing
from ml.model.item_lists import ItemLists
from ml.model.serving import BatchServing


@dataclass
class RecommenderModel(BatchServing, ItemLists, FreshServing):
    """Trained artifact. Build it with :func:`fit_model`; restore it with :meth:`load`."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, object]
    booster: lgb.Booster | None = None
    serving: ServingConfig = field(default_factory=ServingConfig)

    def __post_init__(self) -> None:
        a = self.arrays
        self.user_index = IdIndex(a["user_ids"])
        self.item_index = IdIndex(a["item_ids"])
        self.table = UserItemTable(
            indptr=a["ui_indptr"],
            indices=a["ui_indices"],
            data={
                k[3:]: v
                for k, v in a.items()
                if k.startswith("ui_") and k[3:] not in ("indptr", "indices")
            },
            shape=(len(self.user_index), len(self.item_index)),
        )
        self._seen_csr = sp.csr_matrix(
            (np.ones(self.table.nnz, np.float32), self.table.indices, self.table.indptr),
            shape=self.table.shape,
        )
        self.bins = TimeBins(
            origin=int(self.meta["bins_origin"]),
            width=int(self.meta["bins_width"]),
            cum=a["bins_cum"],
            total=a["bins_total"],
        )
        self.has_als = a["item_factors"].size > 0
        self.item_unit = normalized(a["item_factors"]) if self.has_als else None
        self.has_content = a["content"].size > 0
        self.cooc = sp.csr_matrix(
            (a["cooc_data"], a["cooc_indices"], a["cooc_indptr"]),
            shape=(len(self.item_index), len(self.item_index)),
        )
        self._item_objects = np.empty(len(self.item_index), dtype=object)
        self._item_objects[:] = self.item_index.ids.tolist()  # str objects, built once
        self._pop_order = np.lexsort((np.arange(len(a["popularity"])), -a["popularity"]))
        self._trend_order = np.lexsort((np.arange(len(a["trending"])), -a["trending"]))
        self._trend_rank = np.empty(len(self._trend_order), np.int64)
        self._trend_rank[self._trend_order] = np.arange(len(self._trend_order))
        categories = a["categories"].tolist()
        self._item_cats = a["item_cats"]
        self._category_names = categories

    # ------------------------------------------------------------------ properties
    @property
    def strategy(self) -> str:
        return str(self.meta["strategy"])

    @property
    def reference_ts(self) -> int:
        return int(self.meta["reference_ts"])

    @property
    def n_users(self) -> int:
        return len(self.user_index)

    @property
    def n_items(self) -> int:
        return len(self.item_index)

    @property
    def repeat_store(self) -> bool:
        """True when shoppers often come back to items they already had: callers should then
        serve with ``exclude_seen=False``.
        """
        return bool(self.meta.get("repeat_store", False))

    @property
    def item_categories(self) -> dict[str, list[str]]:
        """item_id -> category names (as given in the catalog), for explanations."""
        names = self._category_names
        out = {}
        for pos, item in enumerate(self.item_index.ids.tolist()):
            cats = [names[c] for c in self._item_cats[pos] if c >= 0]
            out[item] = cats
        return out

    def categories_of(self, item_id: str) -> list[str]:
        """Category names of one item ([] for unknown items)."""
        i = self.item_index.get(str(item_id))
        if i is None:
            return []
        return [self._category_names[c] for c in self._item_cats[i] if c >= 0]

    def with_strategy(self, strategy: str) -> RecommenderModel:
        """Same arrays, different serving strategy (shares memory; no copy)."""
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}")
        if strategy != "popularity" and not self.has_als:
            raise ValueError("this model has no ALS factors")
        if strategy == "als+rerank" and self.booster is None:
            raise ValueError("this model has no ranker")
        clone = RecommenderModel.__new__(RecommenderModel)
        clone.__dict__.update(self.__dict__)
        clone.meta = {**self.meta, "strategy": strategy}
        return clone

    def resident_bytes(self) -> int:
        """Private memory this model holds, estimated: arrays not mapped from the artifact
        (all of them before a save/load), what loading derived from them (id dictionaries,
        normalised factors, orders) and the ranker. Mapped pages are the page cache's, shared
        by every process, and are not counted."""
        seen: set[int] = set()
        total = 0

        def add(value: object) -> None:
            nonlocal total
            if isinstance(value, np.ndarray):
                if id(value) not in seen and not is_mapped(value):
                    seen.add(id(value))
                    total += value.nbytes
                    if value.dtype.hasobject:  # the str objects, about 60 bytes each
                        total += 60 * value.size
            elif isinstance(value, sp.spmatrix):
                for part in (value.data, value.indices, value.indptr):
                    add(part)

        for value in self.arrays.values():
            add(value)
        for value in self.__dict__.values():
            add(value)
        for index in (self.user_index, self.item_index):
            add(index.ids)
            total += index.resident_bytes()
        if self.booster is not None:
            total += 2 * len(self.booster.model_to_string())
        return total

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        """Write ``manifest.json``, ``arrays.npz`` and, with a ranker, ``ranker.txt`` into
        ``directory`` (created if needed; existing files of those names are replaced).
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_arrays(d / "arrays.npz", self.arrays)
        if self.booster is not None:
            self.booster.save_model(str(d / "ranker.txt"))
        manifest = {
            "format_version": FORMAT_VERSION,
            "meta": self.meta,
            "serving": self.serving.to_dict(),
            "has_ranker": self.booster is not None,
            "feature_names": list(FEATURE_NAMES),
        }
        (d / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))

    @classmethod
    def load(cls, directory: str | Path) -> RecommenderModel:
        """Restore a model written by :meth:`save`. Raises ``ValueError`` on an unknown format
        version or feature list (retrain instead of serving garbage).
        """
        d = Path(directory)
        manifest = json.loads((d / "manifest.json").read_text())
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported model format {manifest.get('format_version')!r}")
        if manifest.get("has_ranker") and manifest.get("feature_names") != list(FEATURE_NAMES):
            raise ValueError("model was trained with a different feature set; retrain it")
        arrays = load_arrays(d / "arrays.npz")
        booster = lgb.Booster(model_file=str(d / "ranker.txt")) if manifest["has_ranker"] else None
        return cls(
            arrays=arrays,
            meta=manifest["meta"],
            booster=booster,
            serving=ServingConfig.from_dict(manifest["serving"]),
        )
