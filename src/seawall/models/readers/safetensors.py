"""safetensors: an 8-byte header length, a JSON index, then raw little-endian tensors."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np

from seawall.models.tensors import ITEM_SIZES, ModelError, TensorInfo, WeightFile, map_file
from seawall.models.tensors import release
from seawall.models.tensors import to_float32

MAX_HEADER = 100 * 1024 * 1024  # the reference implementation's own limit


class SafetensorsFile(WeightFile):
    format = "safetensors"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.data = map_file(path)
        if len(self.data) < 8:
            raise ModelError(f"{path}: too short for safetensors")
        (n,) = struct.unpack_from("<Q", self.data, 0)
        if not 2 <= n <= MAX_HEADER or 8 + n > len(self.data):
            raise ModelError(f"{path}: safetensors header length {n} is out of range")
        try:
            header = json.loads(bytes(self.data[8 : 8 + n]))
        except (ValueError, RecursionError) as exc:
            raise ModelError(f"{path}: safetensors header is not JSON ({exc})") from None
        if not isinstance(header, dict):
            raise ModelError(f"{path}: safetensors header is not an object")
        self.metadata = header.pop("__metadata__", None) or {}
        self.base = 8 + n
        for order, (name, entry) in enumerate(header.items()):
            self.tensors.append(self._info(name, entry, order))

    def _info(self, name: str, entry: object, order: int) -> TensorInfo:
        if not isinstance(entry, dict):
            raise ModelError(f"{self.path}: tensor {name!r} has no description")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if (dtype not in ITEM_SIZES or not isinstance(shape, list) or len(shape) > 8
                or not all(isinstance(d, int) and d >= 0 for d in shape)
                or not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(o) is int for o in offsets) or not 0 <= offsets[0] <= offsets[1]):
            raise ModelError(f"{self.path}: tensor {name!r} has a bad dtype, shape or offsets")
        start, end = offsets
        if end - start != ITEM_SIZES[dtype] * math.prod(shape) or self.base + end > len(self.data):
            raise ModelError(f"{self.path}: tensor {name!r} runs past the end of the file")
        return TensorInfo(name, tuple(shape), dtype, order, {"offset": start})

    def load(self, info: TensorInfo) -> np.ndarray:
        start = self.base + info.extra["offset"]
        end = start + ITEM_SIZES[info.dtype] * info.numel
        with memoryview(self.data)[start:end] as raw:
            values = to_float32(raw, info.dtype, info.shape)
        release(self.data, start, end)
        return values

    def close(self) -> None:
        if hasattr(self.data, "close"):
            self.data.close()
