"""One view of every weight format: a list of tensors, each loaded alone, in float32.

Readers only index a file (headers, offsets, layouts); ``load`` reads one tensor and
returns it as a float32 array in the **canonical layout**: a linear layer's weight is
``(out_features, in_features)`` as PyTorch stores it, whatever the container's own
convention (ONNX ``MatMul`` and GGUF store it the other way round). Memory is bounded by
the largest tensor, never the model: files are memory-mapped and nothing is kept.
"""

from __future__ import annotations

import hashlib
import mmap
import math
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

FLOAT_DTYPES = frozenset({"F32", "F16", "BF16", "F64", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                          "Q4_K", "Q5_K", "Q6_K", "Q8_K", "Q2_K", "Q3_K", "I8-dequant"})
MAX_TENSORS = 1_000_000
MAX_DIMS = 8


class ModelError(ValueError):
    """A file that is not a readable model; the message names the file and the reason."""


@dataclass
class TensorInfo:
    """What a container says about one tensor, before any data is read."""

    name: str
    shape: tuple[int, ...]
    """Canonical shape (``(out, in)`` for linear weights)."""
    dtype: str
    """Stored type: F32, F16, BF16, Q4_0, I8 (quantised, with a scale), I64..."""
    order: int = 0
    """Position in the file or graph: layer order where names say nothing."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES or self.extra.get("dequantized", False)


class WeightFile(ABC):
    """A model file indexed by one reader."""

    format: str = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tensors: list[TensorInfo] = []
        self.metadata: dict[str, Any] = {}

    @abstractmethod
    def load(self, info: TensorInfo) -> np.ndarray:
        """The tensor as a float32 array in canonical layout (a fresh array)."""

    def close(self) -> None:  # noqa: B027 - most readers hold nothing to release
        """Release the file mapping."""

    def __enter__(self) -> "WeightFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def by_name(self) -> dict[str, TensorInfo]:
        return {t.name: t for t in self.tensors}

    def iter_arrays(self) -> Iterator[tuple[TensorInfo, np.ndarray]]:
        for info in self.tensors:
            yield info, self.load(info)

    def summary(self) -> dict[str, Any]:
        dtypes = Counter(t.dtype for t in self.tensors)
        return {"format": self.format, "tensors": len(self.tensors),
                "parameters": sum(t.numel for t in self.tensors),
                "dtypes": dict(dtypes.most_common())}


def map_file(path: Path) -> mmap.mmap | bytes:
    """A read-only mapping of ``path`` (an empty file maps to ``b''``)."""
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        if size == 0:
            return b""
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


def release(data: Any, start: int, end: int) -> None:
    """Drop the mapped pages of a tensor already copied out, so RSS stays one tensor deep.

    Mapped file pages are clean and reclaimable, but they count in RSS until evicted;
    ``MADV_DONTNEED`` returns them at once (a later read simply faults them back in).
    """
    if not isinstance(data, mmap.mmap) or not hasattr(mmap, "MADV_DONTNEED"):
        return
    page = mmap.PAGESIZE
    first = start - start % page
    if end > first:
        try:
            data.madvise(mmap.MADV_DONTNEED, first, min(end, len(data)) - first)
        except (OSError, ValueError):
            pass


def to_float32(raw: Any, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Decode little-endian ``raw`` bytes of a plain dtype into a float32 array."""
    count = math.prod(shape)
    if dtype == "BF16":
        half = np.frombuffer(raw, dtype="<u2", count=count)
        out = (half.astype(np.uint32) << 16).view(np.float32)
    else:
        np_type = PLAIN_TYPES.get(dtype)
        if np_type is None:
            raise ModelError(f"unsupported dtype {dtype}")
        out = np.frombuffer(raw, dtype=np_type, count=count).astype(np.float32)
    return out.reshape(shape)


PLAIN_TYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4",
               "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "u1", "U16": "<u2", "U32": "<u4",
               "U64": "<u8"}
ITEM_SIZES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
              "U8": 1, "BOOL": 1, "U16": 2, "U32": 4, "U64": 8}


def canonical_hash(array: np.ndarray) -> str:
    """SHA-256 of a tensor in float32, C order, invariant to transposition of a matrix.

    The same weights saved as fp32 safetensors, a PyTorch checkpoint, an fp32 ONNX
    (transposed for ``MatMul``) or a renamed copy hash alike; fp16/bf16 values are exact
    in float32, so an upcast copy of a half-precision model hashes alike too. Hashed in
    slices of about 4 MB, so hashing costs no copy of the tensor.
    """
    a = np.asarray(array)
    if a.ndim == 2 and a.shape[0] < a.shape[1]:
        return _digest(a.T)  # a non-square matrix is hashed tall: one orientation, one pass
    if a.ndim == 2 and a.shape[0] == a.shape[1]:
        return min(_digest(a), _digest(a.T))  # square: no shape says which way is up
    return _digest(a)


def _digest(a: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(repr(tuple(a.shape)).encode())
    rows = a.reshape(a.shape[0], -1) if a.ndim >= 1 and a.shape[0] else a.reshape(1, -1)
    step = max(1, (1 << 20) // max(1, rows.shape[1]))
    for start in range(0, rows.shape[0], step):
        chunk = np.ascontiguousarray(rows[start : start + step], dtype="<f4")
        chunk = chunk + np.float32(0)  # -0.0 becomes 0.0: the same weight
        h.update(chunk.tobytes())
    return h.hexdigest()
