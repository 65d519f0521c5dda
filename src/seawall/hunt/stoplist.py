"""Fingerprints of public code, which never count as evidence of a copy.

Every false alarm measured in ``shared/notes/code-fingerprinting.md`` was public or
structural code (a CRC-32 table, a plist DTD, helpers that many packages vendor). The
stoplist shipped with seawall (``stoplist.bin``) holds the top 32 bits of every k-gram
and string shingle of a set of popular npm and PyPI releases; ``index add`` drops the
private fingerprints it contains, so the index never holds them. Regenerate it with
``python -m seawall.hunt.build_stoplist`` (see docs/hunt.md).

File format: magic ``b"SWLSTOP\\0"``, u32 version (1), u32 count, u32 header length,
a JSON header (what it was built from), then zlib of the sorted distinct u32 values,
delta-encoded (each value minus the previous one) as little-endian u32.
"""

from __future__ import annotations

import json
import struct
import zlib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"SWLSTOP\0"
VERSION = 1
_HEAD = struct.Struct("<8sIII")
SHIPPED = "stoplist.bin"


def encode(values: np.ndarray, info: dict[str, Any]) -> bytes:
    top = np.unique(np.asarray(values, dtype=np.uint32))
    deltas = np.diff(top, prepend=np.uint32(0)).astype("<u4")
    raw = json.dumps(info, sort_keys=True).encode()
    return _HEAD.pack(MAGIC, VERSION, len(top), len(raw)) + raw + zlib.compress(
        deltas.tobytes(), 9)


def decode(data: bytes) -> tuple[np.ndarray, dict[str, Any]]:
    if len(data) < _HEAD.size:
        raise ValueError("stoplist too short")
    magic, version, count, hlen = _HEAD.unpack_from(data, 0)
    if magic != MAGIC or version != VERSION:
        raise ValueError("not a version 1 seawall stoplist")
    info = json.loads(data[_HEAD.size:_HEAD.size + hlen])
    raw = zlib.decompress(data[_HEAD.size + hlen:])
    deltas = np.frombuffer(raw, dtype="<u4")
    if len(deltas) != count:
        raise ValueError("stoplist count mismatch")
    with np.errstate(over="ignore"):
        values = np.cumsum(deltas, dtype=np.uint32)
    return values, info


@lru_cache(maxsize=4)
def load(path: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The shipped stoplist, or one at ``path``; an empty one when none is shipped."""
    if path is not None:
        return decode(Path(path).read_bytes())
    try:
        data = resources.files("seawall.hunt").joinpath(SHIPPED).read_bytes()
    except (FileNotFoundError, OSError):
        return np.zeros(0, dtype=np.uint32), {"packages": [], "note": "no stoplist shipped"}
    return decode(data)


def top32(hashes: np.ndarray) -> np.ndarray:
    return (np.asarray(hashes, dtype=np.uint64) >> np.uint64(32)).astype(np.uint32)


def stopped(stop: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Mask of ``hashes`` whose top 32 bits are in the (sorted) stoplist."""
    if len(stop) == 0 or len(hashes) == 0:
        return np.zeros(len(hashes), dtype=bool)
    top = top32(hashes)
    at = np.searchsorted(stop, top)
    at[at >= len(stop)] = len(stop) - 1
    return stop[at] == top
