"""The artifact's ``arrays.npz``: an uncompressed zip of ``.npy`` members, written with each
member's data 64-byte aligned, and read back as read-only memory maps of the file.

Mapped arrays cost no private memory: the page cache holds them once for every process on
the machine that serves the model (web workers, Celery), pages are read on first touch and
dropped under memory pressure. ``np.load`` of the same file still works (it is a plain npz),
and artifacts written by ``np.savez`` (uncompressed too) are mapped the same way, unaligned.
"""

from __future__ import annotations

import mmap
import struct
import zipfile
from pathlib import Path

import numpy as np

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip member's local file header (30 bytes)
_ZIP64_EXTRA = 20  # what zipfile adds to a local header written with force_zip64
_PADDING_ID = 0xCAFE  # an extra field readers skip; its length aligns the member's data
_ALIGN = 64  # numpy pads .npy headers to 64 bytes; aligning the member keeps data aligned


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed npz whose array data start on 64-byte boundaries.
    Object arrays are refused (ValueError): an artifact never holds pickles."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, value in arrays.items():
            array = np.asanyarray(value)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            start = zf.fp.tell() + _LOCAL_HEADER.size + len(info.filename.encode()) + _ZIP64_EXTRA
            pad = 4 + (-(start + 4)) % _ALIGN
            info.extra = struct.pack("<HH", _PADDING_ID, pad - 4) + bytes(pad - 4)
            with zf.open(info, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, array, allow_pickle=False)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an npz, memory-mapped read-only where stored uncompressed (loaded into
    memory otherwise, and empty arrays, which cannot be mapped). Raises ValueError for object
    arrays or a malformed file, OSError when unreadable."""
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as raw:
        for info in zf.infolist():
            name = info.filename.removesuffix(".npy")
            if info.compress_type != zipfile.ZIP_STORED:
                with zf.open(info) as member:
                    out[name] = np.lib.format.read_array(member, allow_pickle=False)
                continue
            raw.seek(info.header_offset)
            header = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
            if header[0] != b"PK\x03\x04":
                raise ValueError(f"{path}: bad zip member header for {info.filename}")
            raw.seek(info.header_offset + _LOCAL_HEADER.size + header[9] + header[10])
            version = np.lib.format.read_magic(raw)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(raw)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(raw)
            if dtype.hasobject:
                raise ValueError(f"{path}: {info.filename} holds Python objects")
            if int(np.prod(shape)) == 0:
                out[name] = np.zeros(shape, dtype=dtype)
                continue
            mapped = np.memmap(
                raw,
                dtype=dtype,
                mode="r",
                offset=raw.tell(),
                shape=shape,
                order="F" if fortran else "C",
            )
            out[name] = mapped.view(np.ndarray)
    return out


def is_mapped(array: np.ndarray) -> bool:
    """True when ``array``'s memory is a file mapping (shared page cache, not private)."""
    base = array
    while base is not None:
        if isinstance(base, np.memmap | mmap.mmap):
            return True
        base = getattr(base, "base", None)
    return False
