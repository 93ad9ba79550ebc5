"""MovieLens-100K, read offline out of the ``recbole`` wheel on PyPI (no other network).

The wheel ships ``dataset_example/ml-100k``; we download it once with pip (no dependencies,
nothing installed) into the caller's cache directory, check the ratings file's md5 and parse
the files straight out of the zip.
"""

from __future__ import annotations

import calendar
import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

from ml.data import Catalog, Interactions

RECBOLE_VERSION = "1.2.1"
WHEEL_NAME = f"recbole-{RECBOLE_VERSION}-py3-none-any.whl"
INTER_PATH = "recbole/dataset_example/ml-100k/ml-100k.inter"
ITEM_PATH = "recbole/dataset_example/ml-100k/ml-100k.item"
INTER_MD5 = "a8a8c3f165aedc53f63b5dc0a0463b14"


def ensure_wheel(cache_dir: Path) -> Path:
    """Path of the recbole wheel in ``cache_dir``, downloading it with pip if absent.

    Raises ``RuntimeError`` when pip fails (e.g. no access to PyPI).
    """
    cache_dir = Path(cache_dir)
    wheel = cache_dir / WHEEL_NAME
    if wheel.exists():
        return wheel
    cache_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--quiet",
        f"recbole=={RECBOLE_VERSION}",
        "-d",
        str(cache_dir),
    ]
    # Fixed argument list built from constants and the caller's directory: no shell, no input.
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0 or not wheel.exists():
        raise RuntimeError(f"could not download {WHEEL_NAME}: {done.stderr.strip()[-500:]}")
    return wheel


def _read(cache_dir: Path, member: str) -> str:
    with zipfile.ZipFile(ensure_wheel(cache_dir)) as zf:
        raw = zf.read(member)
    if member == INTER_PATH and hashlib.md5(raw).hexdigest() != INTER_MD5:  # noqa: S324 - checksum
        raise ValueError(f"{member} in {WHEEL_NAME} has an unexpected md5; refusing to use it")
    # RecBole re-encoded GroupLens' Latin-1 files as UTF-8; decoding them as Latin-1 turns
    # "Véronique" into "VÃ©ronique".
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def iter_ml100k_ratings(cache_dir: Path) -> Iterator[tuple[str, str, float, int]]:
    """``(user_id, item_id, rating 1..5, unix_ts)`` for the 100,000 ratings, file order."""
    lines = _read(cache_dir, INTER_PATH).splitlines()
    for line in lines[1:]:
        if not line.strip():
            continue
        user, item, rating, ts = line.split("\t")
        yield user, item, float(rating), int(float(ts))


def iter_ml100k_items(cache_dir: Path) -> Iterator[tuple[str, str, list[str], int | None]]:
    """``(item_id, title, genres, release_ts)`` for the 1,682 movies.

    ``release_ts`` is 1 January of the release year (UTC), None when the year is unknown.
    """
    lines = _read(cache_dir, ITEM_PATH).splitlines()
    for line in lines[1:]:
        if not line.strip():
            continue
        parts = line.split("\t")
        item, title = parts[0], parts[1]
        year = parts[2].strip() if len(parts) > 2 else ""
        genres = parts[3].split() if len(parts) > 3 else []
        release = calendar.timegm((int(year), 1, 1, 0, 0, 0)) if year.isdigit() else None
        yield item, title, [g for g in genres if g != "unknown"], release


def load_ml100k(cache_dir: Path) -> tuple[Interactions, Catalog]:
    """MovieLens-100K as ``rating`` events (value = stars) and a catalog (title, genres as
    categories, release date as ``created_at``; no descriptions or prices).
    """
    interactions = Interactions.from_rows(
        (u, i, "rating", r, ts) for u, i, r, ts in iter_ml100k_ratings(cache_dir)
    )
    catalog = Catalog.from_rows(
        (item, title, None, genres, None, release)
        for item, title, genres, release in iter_ml100k_items(cache_dir)
    )
    return interactions, catalog
