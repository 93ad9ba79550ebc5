"""A store's training events as plain arrays on disk: the input of a training that outgrows one
machine (implicit's GPU backend, a Spark ALS job; deploy/SCALING.md) and of offline analysis.

The folder holds one ``.npy`` per column, readable by numpy (``np.load``, memory-mapped),
pyarrow or Spark through numpy, no pickles:

- ``user_codes.npy`` / ``item_codes.npy`` (int32), ``order_codes.npy`` (int32, 0 = no order):
  indices into ``users.npy`` / ``items.npy`` / ``orders.npy`` (unicode ids; ``orders[0]`` is "");
- ``type_codes.npy`` (int8): indices into ``manifest.json``'s ``event_types``;
- ``values.npy`` (float32, NaN: no rating), ``timestamps.npy`` (int64 unix seconds);
- ``manifest.json`` (written last: a folder without it is incomplete): format, counts, event
  types, and whatever ``meta`` the caller adds (store, window).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ml.data.records import EVENT_TYPES, Interactions

EXPORT_FORMAT = 1
MANIFEST = "manifest.json"


def interactions_export(interactions: Interactions, out: Path, *, meta: dict | None = None) -> dict:
    """Write ``interactions`` into the folder ``out`` (created; files of these names replaced).
    Returns the manifest written. Raises OSError when the folder cannot be written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    columns = {
        "user_codes": ("user_ids", np.int32),
        "item_codes": ("item_ids", np.int32),
        "order_codes": ("order_ids", np.int32),
        "type_codes": ("event_types", np.int8),
    }
    vocabularies = {"user_ids": "users", "item_ids": "items", "order_ids": "orders"}
    for file_name, (column, dtype) in columns.items():
        codes, vocab = interactions.codes(column)
        np.save(out / f"{file_name}.npy", np.asarray(codes, dtype=dtype))
        if column in vocabularies:
            strings = np.array(vocab.tolist(), dtype=str) if len(vocab) else np.zeros(0, "<U1")
            np.save(out / f"{vocabularies[column]}.npy", strings)
    np.save(out / "values.npy", interactions.values.astype(np.float32))
    np.save(out / "timestamps.npy", np.asarray(interactions.timestamps, dtype=np.int64))
    manifest = {
        "format": EXPORT_FORMAT,
        "events": len(interactions),
        "shoppers": len(interactions.codes("user_ids")[1]),
        "items": len(interactions.codes("item_ids")[1]),
        "event_types": list(EVENT_TYPES),
        "meta": meta or {},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def interactions_import(folder: Path) -> Interactions:
    """Read a folder :func:`interactions_export` wrote (columns memory-mapped). Raises
    FileNotFoundError for an incomplete folder, ValueError for another format."""
    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    if manifest.get("format") != EXPORT_FORMAT or manifest.get("event_types") != list(EVENT_TYPES):
        raise ValueError(f"unsupported training export in {folder}")

    def column(name: str) -> np.ndarray:
        return np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)

    def vocab(name: str) -> np.ndarray:
        return np.array(np.load(folder / f"{name}.npy", allow_pickle=False).tolist(), dtype=object)

    return Interactions.from_codes(
        user_codes=column("user_codes"),
        user_vocab=vocab("users"),
        item_codes=column("item_codes"),
        item_vocab=vocab("items"),
        type_codes=column("type_codes"),
        values=column("values"),
        timestamps=column("timestamps"),
        order_codes=column("order_codes"),
        order_vocab=vocab("orders"),
    )
