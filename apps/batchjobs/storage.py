"""Where a batch job's files live in Django's default storage, how the complete result is
committed, and the expiring download link.

Names lead with the store's schema (`batchjobs/<schema>/...`), so one store's files never sit
under another's prefix. While a job runs, each chunk writes a part file under
`batchjobs/<schema>/<job>/parts/`; only when every chunk is done are the parts joined into the
result name, and that name becomes visible only complete: on a file-system storage through a
temporary name in the same folder and an atomic rename, on an object store through one upload
(an object appears only when its upload completes). The job row names the result only after
that, so a cancelled or failed job never presents a partial file.

Storage goes through `default_storage` only (no local paths outside the file-system case), so
switching STORAGES["default"] to S3 needs no change here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable

import orjson
from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

_LINK_SALT = "apps.batchjobs.download"
PARTIAL_SUFFIX = ".partial"


def _folder(schema_name: str, job_id: uuid.UUID | str) -> str:
    return f"batchjobs/{schema_name}/{job_id}"


def result_name(schema_name: str, job_id: uuid.UUID | str) -> str:
    return f"batchjobs/{schema_name}/{job_id}.jsonl"


def shoppers_name(schema_name: str, job_id: uuid.UUID | str) -> str:
    """The job's shopper ids, in order (fixed when the job starts)."""
    return f"{_folder(schema_name, job_id)}/shoppers.json"


def part_name(schema_name: str, job_id: uuid.UUID | str, index: int) -> str:
    return f"{_folder(schema_name, job_id)}/parts/{index:06d}.jsonl"


def _replace(name: str, content: bytes) -> None:
    """Write `content` under exactly `name` (a redelivered chunk rewrites its part)."""
    if default_storage.exists(name):
        default_storage.delete(name)
    saved = default_storage.save(name, ContentFile(content))
    if saved != name:  # a concurrent writer took the name: ours must not survive under another
        default_storage.delete(saved)
        raise OSError(f"Storage saved {name!r} as {saved!r}.")


def shoppers_write(schema_name: str, job_id: uuid.UUID | str, user_ids: list[str]) -> None:
    _replace(shoppers_name(schema_name, job_id), orjson.dumps(user_ids))


def shoppers_read(schema_name: str, job_id: uuid.UUID | str) -> list[str]:
    with default_storage.open(shoppers_name(schema_name, job_id), "rb") as handle:
        return orjson.loads(handle.read())


def part_write(schema_name: str, job_id: uuid.UUID | str, index: int, lines: list[bytes]) -> None:
    _replace(part_name(schema_name, job_id, index), b"".join(lines))


def _local_path(name: str) -> str | None:
    try:
        return default_storage.path(name)
    except NotImplementedError:
        return None


def _copy_parts(names: Iterable[str], out) -> None:
    for name in names:
        with default_storage.open(name, "rb") as part:
            shutil.copyfileobj(part, out, length=1 << 20)


def result_commit(schema_name: str, job_id: uuid.UUID | str, chunks: int) -> tuple[str, int]:
    """Join the job's `chunks` part files, in order, into its result name; returns (name,
    size in bytes). The result name holds either nothing or the complete file."""
    name = result_name(schema_name, job_id)
    parts = [part_name(schema_name, job_id, index) for index in range(chunks)]
    path = _local_path(name)
    if path is not None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = path + PARTIAL_SUFFIX
        with open(partial, "wb") as out:
            _copy_parts(parts, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
        return name, os.path.getsize(path)
    with tempfile.TemporaryFile() as spool:
        _copy_parts(parts, spool)
        size = spool.tell()
        spool.seek(0)
        if default_storage.exists(name):
            default_storage.delete(name)
        saved = default_storage.save(name, File(spool, name=os.path.basename(name)))
    if saved != name:
        default_storage.delete(saved)
        raise OSError(f"Storage saved {name!r} as {saved!r}.")
    return name, size


def work_files_delete(schema_name: str, job_id: uuid.UUID | str, chunks: int) -> None:
    """Delete the job's shopper list, part files and any temporary result (never the committed
    result). Safe to call more than once."""
    names = [shoppers_name(schema_name, job_id)]
    names += [part_name(schema_name, job_id, index) for index in range(chunks)]
    for name in names:
        if default_storage.exists(name):
            default_storage.delete(name)
    path = _local_path(result_name(schema_name, job_id))
    if path is not None and os.path.exists(path + PARTIAL_SUFFIX):
        os.remove(path + PARTIAL_SUFFIX)


def result_delete(name: str) -> None:
    if name and default_storage.exists(name):
        default_storage.delete(name)


# --- the download link --------------------------------------------------------------------------
def download_token(schema_name: str, job_id: uuid.UUID | str) -> tuple[str, int]:
    """(token, expiry as epoch seconds): a signed statement that the job's result of this
    store may be downloaded until then (BATCH_DOWNLOAD_LINK_SECONDS from now)."""
    expires = int(time.time()) + settings.BATCH_DOWNLOAD_LINK_SECONDS
    token = signing.dumps({"s": schema_name, "j": str(job_id), "e": expires}, salt=_LINK_SALT)
    return token, expires


class LinkRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def download_token_check(token: str, *, schema_name: str, job_id: uuid.UUID | str) -> None:
    """Raise LinkRefused unless `token` was signed for this store's job and has not expired."""
    try:
        claim = signing.loads(token, salt=_LINK_SALT)
    except signing.BadSignature:
        raise LinkRefused("invalid_link", "This download link is not valid.") from None
    if (
        not isinstance(claim, dict)
        or claim.get("s") != schema_name
        or claim.get("j") != str(job_id)
    ):
        raise LinkRefused("invalid_link", "This download link is not valid.")
    if not isinstance(claim.get("e"), int) or claim["e"] < time.time():
        raise LinkRefused("link_expired", "This download link has expired.")
